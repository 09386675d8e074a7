"""Render the API reference, docs/api.md, from the .proto files and their comments.

Run from the repository root after editing a .proto:

    python proto/render_docs.py            # writes docs/api.md
    python proto/render_docs.py --check    # exits 1 when docs/api.md is stale

protoc (from grpcio-tools, the [dev] extra) parses the protos with
``--include_source_info``; every comment comes from there, so the reference says exactly
what the .proto says. ``tests/test_api_docs.py`` fails when docs/api.md is stale.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

PROTO_ROOT = Path(__file__).resolve().parent
REPO_ROOT = PROTO_ROOT.parent
OUTPUT = REPO_ROOT / "docs" / "api.md"

# Field numbers of the descriptor messages, as used in SourceCodeInfo paths.
_FILE_MESSAGE, _FILE_ENUM, _FILE_SERVICE, _FILE_SYNTAX = 4, 5, 6, 12
_MSG_FIELD, _MSG_NESTED, _MSG_ENUM = 2, 3, 4
_ENUM_VALUE = 2
_SERVICE_METHOD = 2

_SCALARS = {
    1: "double", 2: "float", 3: "int64", 4: "uint64", 5: "int32", 6: "fixed64", 7: "fixed32",
    8: "bool", 9: "string", 12: "bytes", 13: "uint32", 15: "sfixed32", 16: "sfixed64",
    17: "sint32", 18: "sint64",
}
_TYPE_MESSAGE, _TYPE_ENUM = 11, 14
_LABEL_REPEATED = 3


def load_descriptors():
    """The FileDescriptorSet of our .proto files, comments included."""
    from google.protobuf import descriptor_pb2

    from generate import run_protoc

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "descriptors.pb"
        run_protoc("--include_source_info", f"--descriptor_set_out={out}")
        fds = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
    return list(fds.file)


class _Comments:
    """Leading (else trailing) comments of one file, by SourceCodeInfo path."""

    def __init__(self, file) -> None:
        self.by_path = {}
        for loc in file.source_code_info.location:
            text = loc.leading_comments or loc.trailing_comments
            if text.strip():
                self.by_path[tuple(loc.path)] = text

    def __call__(self, *path: int) -> str:
        return _escape(_clean(self.by_path.get(tuple(path), "")))


def _clean(comment: str) -> str:
    lines = [line[1:] if line.startswith(" ") else line for line in comment.strip("\n").split("\n")]
    return "\n".join(lines).strip()


def _escape(text: str) -> str:
    """Markdown-safe comment text: ``<`` and ``>`` outside `code` spans would read as HTML."""
    parts = text.split("`")
    for i in range(0, len(parts), 2):  # even parts lie outside code spans
        parts[i] = parts[i].replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return "`".join(parts)


def _one_line(text: str) -> str:
    """A comment as one table cell."""
    return " ".join(text.split()).replace("|", "\\|")


def _anchor(full_name: str) -> str:
    return full_name.lstrip(".").lower().replace(".", "-")


def _short(full_name: str, package: str) -> str:
    name = full_name.lstrip(".")
    return name[len(package) + 1:] if package and name.startswith(package + ".") else name


class _Renderer:
    def __init__(self, files) -> None:
        self.files = files
        self.package = files[0].package if files else ""
        self.local = set()  # full names of our messages and enums, which get anchors
        self.maps = {}  # full name of a map entry message -> (key field, value field)
        for file in files:
            for message, prefix in self._walk_messages(file.message_type, "." + file.package):
                full = f"{prefix}.{message.name}"
                self.local.add(full)
                if message.options.map_entry:
                    self.maps[full] = (message.field[0], message.field[1])
                for enum in message.enum_type:
                    self.local.add(f"{full}.{enum.name}")
            for enum in file.enum_type:
                self.local.add(f".{file.package}.{enum.name}")

    def _walk_messages(self, messages, prefix):
        for message in messages:
            yield message, prefix
            yield from self._walk_messages(message.nested_type, f"{prefix}.{message.name}")

    def type_ref(self, full_name: str) -> str:
        short = _short(full_name, self.package)
        if full_name in self.local:
            return f"[`{short}`](#{_anchor(full_name)})"
        return f"`{short}`"

    def field_type(self, field) -> str:
        if field.type in (_TYPE_MESSAGE, _TYPE_ENUM):
            if field.type_name in self.maps:
                key, value = self.maps[field.type_name]
                return f"map&lt;{self.field_type(key)}, {self.field_type(value)}&gt;"
            base = self.type_ref(field.type_name)
        else:
            base = f"`{_SCALARS.get(field.type, str(field.type))}`"
        if field.label == _LABEL_REPEATED:
            return f"repeated {base}"
        if field.proto3_optional:
            return f"optional {base}"
        return base

    # ------------------------------------------------------------------ pieces
    def render(self) -> str:
        out = [
            "# vectord API reference (v1)",
            "",
            "<!-- Generated by `python proto/render_docs.py` from proto/vectord/v1/*.proto; do not edit."
            " tests/test_api_docs.py fails when this file is stale. -->",
            "",
            "The API contract is the `.proto` files in `proto/vectord/v1/` (package `vectord.v1`); this",
            "page renders their comments. Any language with gRPC can be a client: compile or load the",
            "protos (they import only `google/protobuf/struct.proto`), connect to `vectord serve`",
            "(default `127.0.0.1:50051`), and send `authorization: Bearer <key>` metadata when the",
            "server has API keys. Errors are gRPC status codes with a message that names the problem.",
            "The server also speaks `grpc.health.v1.Health` and server reflection.",
            "",
            "Conventions: vectors travel packed ([`Vectors`](#vectord-v1-vectors): little-endian",
            "float32, row-major, with `dim` and `count`); metadata values are typed",
            "([`Value`](#vectord-v1-value)); filters are structured ([`Filter`](#vectord-v1-filter)).",
            "",
            "## Services",
            "",
            "| service | rpc | request | response |",
            "|---|---|---|---|",
        ]
        for file in self.files:
            for service in file.service:
                for method in service.method:
                    stream_in = "stream " if method.client_streaming else ""
                    stream_out = "stream " if method.server_streaming else ""
                    out.append(f"| [`{service.name}`](#{_anchor(f'{file.package}.{service.name}')}) "
                               f"| [`{method.name}`](#{_anchor(f'{file.package}.{service.name}.{method.name}')}) "
                               f"| {stream_in}{self.type_ref(method.input_type)} "
                               f"| {stream_out}{self.type_ref(method.output_type)} |")
        out.append("")
        for file in self.files:
            out.extend(self.render_file(file))
        return "\n".join(out).rstrip("\n") + "\n"

    def render_file(self, file) -> list[str]:
        comments = _Comments(file)
        name = Path(file.name).name
        out = [f"## {name}", "", f"`proto/{file.name}`", ""]
        intro = comments(_FILE_SYNTAX)
        if intro:
            out += [intro, ""]
        for i, service in enumerate(file.service):
            out += self.render_service(file, service, comments, (_FILE_SERVICE, i))
        for i, enum in enumerate(file.enum_type):
            out += self.render_enum(f".{file.package}.{enum.name}", enum, comments, (_FILE_ENUM, i))
        for i, message in enumerate(file.message_type):
            out += self.render_message(f".{file.package}.{message.name}", message, comments, (_FILE_MESSAGE, i))
        return out

    def render_service(self, file, service, comments, path) -> list[str]:
        full = f"{file.package}.{service.name}"
        out = [f'<a id="{_anchor(full)}"></a>', "", f"### service `{service.name}`", ""]
        text = comments(*path)
        if text:
            out += [text, ""]
        for j, method in enumerate(service.method):
            stream_in = "stream " if method.client_streaming else ""
            stream_out = "stream " if method.server_streaming else ""
            out += [f'<a id="{_anchor(full + "." + method.name)}"></a>', "",
                    f"#### `{service.name}.{method.name}`", "",
                    f"`rpc {method.name}({stream_in}{_short(method.input_type, self.package)}) returns "
                    f"({stream_out}{_short(method.output_type, self.package)})`", "",
                    f"Request: {stream_in}{self.type_ref(method.input_type)}; response: "
                    f"{stream_out}{self.type_ref(method.output_type)}.", ""]
            text = comments(*path, _SERVICE_METHOD, j)
            if text:
                out += [text, ""]
        return out

    def render_enum(self, full: str, enum, comments, path) -> list[str]:
        out = [f'<a id="{_anchor(full)}"></a>', "",
               f"### enum `{_short(full, self.package)}`", ""]
        text = comments(*path)
        if text:
            out += [text, ""]
        out += ["| value | number | description |", "|---|---|---|"]
        for k, value in enumerate(enum.value):
            out.append(f"| `{value.name}` | {value.number} | {_one_line(comments(*path, _ENUM_VALUE, k))} |")
        return out + [""]

    def render_message(self, full: str, message, comments, path) -> list[str]:
        if message.options.map_entry:
            return []
        out = [f'<a id="{_anchor(full)}"></a>', "",
               f"### message `{_short(full, self.package)}`", ""]
        text = comments(*path)
        if text:
            out += [text, ""]
        if message.field:
            out += ["| field | type | number | description |", "|---|---|---|---|"]
            for k, field in enumerate(message.field):
                note = ""
                if field.HasField("oneof_index") and not field.proto3_optional:
                    note = f"(oneof `{message.oneof_decl[field.oneof_index].name}`) "
                description = note + _one_line(comments(*path, _MSG_FIELD, k))
                out.append(f"| `{field.name}` | {self.field_type(field)} | {field.number} | {description.strip()} |")
        else:
            out.append("No fields.")
        out.append("")
        for k, enum in enumerate(message.enum_type):
            out += self.render_enum(f"{full}.{enum.name}", enum, comments, (*path, _MSG_ENUM, k))
        for k, nested in enumerate(message.nested_type):
            out += self.render_message(f"{full}.{nested.name}", nested, comments, (*path, _MSG_NESTED, k))
        return out


def render() -> str:
    """docs/api.md's text, from the current .proto files."""
    return _Renderer(load_descriptors()).render()


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        if not OUTPUT.exists() or OUTPUT.read_text() != text:
            print(f"{OUTPUT.relative_to(REPO_ROOT)} is stale: run `python proto/render_docs.py`", file=sys.stderr)
            return 1
        return 0
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(text)
    print(OUTPUT.relative_to(REPO_ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
