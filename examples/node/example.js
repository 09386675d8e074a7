#!/usr/bin/env node
// A vectord client in Node.js, built from nothing but the .proto files in ../../proto.
//
//   cd examples/node && npm ci
//   node example.js [host:port]          # default localhost:50051; VECTORD_API_KEY if set
//
// It creates a collection, upserts packed float32 vectors, queries with a metadata filter,
// and embeds text with the server's built-in encoder (skipped, with a note, when the
// server has none). Each step prints one JSON line, so scripts and tests can read it.
"use strict";

const fs = require("fs");
const path = require("path");
const grpc = require("@grpc/grpc-js");
const protoLoader = require("@grpc/proto-loader");

const PROTO_ROOT = path.resolve(__dirname, "..", "..", "proto");
const PROTO_DIR = path.join(PROTO_ROOT, "vectord", "v1");

// --------------------------------------------------------------------------- loading
// Every vectord/v1/*.proto, resolved against ../../proto. google/protobuf/struct.proto
// (imported by types.proto) is bundled with protobufjs, so this works offline.
function loadApi() {
  const files = fs.readdirSync(PROTO_DIR)
    .filter((name) => name.endsWith(".proto"))
    .sort()
    .map((name) => `vectord/v1/${name}`);
  const definition = protoLoader.loadSync(files, {
    includeDirs: [PROTO_ROOT],
    keepCase: true,   // field names as in the .proto: data_f32le, n_results, ...
    longs: Number,    // uint64 counts and seq as JS numbers
    enums: String,    // "COSINE", "GTE", ...
    defaults: true,   // absent fields read as their defaults
    oneofs: true,     // Value.kind / Filter.kind name the field that is set
  });
  return grpc.loadPackageDefinition(definition).vectord.v1;
}

// --------------------------------------------------------------------------- vectors
// Vectors travel as packed little-endian float32, row-major: count * dim * 4 bytes.
function packVectors(rows) {
  const dim = rows[0].length;
  const data = Buffer.alloc(rows.length * dim * 4);
  rows.forEach((row, i) => {
    if (row.length !== dim) throw new Error(`vector ${i} has dim ${row.length}, expected ${dim}`);
    row.forEach((x, j) => data.writeFloatLE(x, (i * dim + j) * 4));
  });
  return { dim, count: rows.length, data_f32le: data };
}

function unpackVectors(vectors) {
  const { dim, count, data_f32le: data } = vectors;
  if (data.length !== dim * count * 4) throw new Error(`expected ${dim * count * 4} bytes, got ${data.length}`);
  const rows = [];
  for (let i = 0; i < count; i++) {
    const row = new Array(dim);
    for (let j = 0; j < dim; j++) row[j] = data.readFloatLE((i * dim + j) * 4);
    rows.push(row);
  }
  return rows;
}

// --------------------------------------------------------------------------- metadata
// Metadata values are typed (Value: string, int, double, bool, null, list, map).
function toValue(v) {
  if (v === null) return { null_value: "NULL_VALUE" };
  if (typeof v === "boolean") return { bool_value: v };
  if (typeof v === "number") return Number.isInteger(v) ? { int_value: v } : { double_value: v };
  if (typeof v === "string") return { string_value: v };
  if (Array.isArray(v)) return { list_value: { values: v.map(toValue) } };
  return { map_value: toMetadata(v) };
}

function toMetadata(obj) {
  const fields = {};
  for (const [key, value] of Object.entries(obj)) fields[key] = toValue(value);
  return { fields };
}

function fromValue(value) {
  switch (value.kind) {
    case "list_value": return value.list_value.values.map(fromValue);
    case "map_value": return fromMetadata(value.map_value);
    case "null_value": case undefined: return null;
    default: return value[value.kind];
  }
}

function fromMetadata(metadata) {
  const out = {};
  for (const [key, value] of Object.entries(metadata.fields || {})) out[key] = fromValue(value);
  return out;
}

// --------------------------------------------------------------------------- calls
function connect(api, address, apiKey) {
  const credentials = grpc.credentials.createInsecure();
  const options = {  // the server's message limit, on this end too
    "grpc.max_send_message_length": 64 * 1024 * 1024,
    "grpc.max_receive_message_length": 64 * 1024 * 1024,
  };
  const stubs = {};
  for (const service of ["Collections", "Records", "Encoder", "Admin"]) {
    stubs[service] = new api[service](address, credentials, options);
  }
  // call("Records", "Query", request) -> Promise of the response, with a deadline and the key.
  return function call(service, method, request, timeoutS = 30) {
    const metadata = new grpc.Metadata();
    if (apiKey) metadata.set("authorization", `Bearer ${apiKey}`);
    const deadline = new Date(Date.now() + timeoutS * 1000);
    return new Promise((resolve, reject) => {
      stubs[service][method](request, metadata, { deadline }, (err, response) =>
        (err ? reject(err) : resolve(response)));
    });
  };
}

const STATUS_NAMES = Object.fromEntries(Object.entries(grpc.status).map(([name, code]) => [code, name]));

function statusName(err) {
  return STATUS_NAMES[err.code] || String(err.code);
}

function emit(step, fields) {
  process.stdout.write(JSON.stringify({ step, ...fields }) + "\n");
}

async function dropCollection(call, name) {
  try {
    await call("Collections", "DeleteCollection", { name });
  } catch (err) {
    if (err.code !== grpc.status.NOT_FOUND) throw err;
  }
}

// --------------------------------------------------------------------------- the example
async function main() {
  const address = process.argv[2] || "localhost:50051";
  const api = loadApi();
  const call = connect(api, address, process.env.VECTORD_API_KEY);

  const info = await call("Admin", "GetServerInfo", {});
  emit("server_info", { version: info.version, max_message_bytes: info.max_message_bytes });

  // 1. A collection of 3-d vectors, cosine distance.
  const name = "node-example";
  await dropCollection(call, name);  // start from scratch on every run
  const collection = await call("Collections", "CreateCollection", {
    name, dim: 3, metric: "COSINE", hnsw: { m: 16 },
  });
  emit("create_collection", { name: collection.name, dim: collection.dim, metric: collection.metric });

  // 2. Upsert records: ids, packed float32 vectors, documents and typed metadata.
  const books = [
    { id: "dune", vector: [0.9, 0.1, 0.0], doc: "Dune", meta: { year: 1965, genre: "scifi", rating: 4.5 } },
    { id: "neuromancer", vector: [0.8, 0.3, 0.1], doc: "Neuromancer", meta: { year: 1984, genre: "scifi" } },
    { id: "hyperion", vector: [0.85, 0.2, 0.05], doc: "Hyperion", meta: { year: 1989, genre: "scifi" } },
    { id: "leviathan", vector: [0.7, 0.2, 0.3], doc: "Leviathan Wakes", meta: { year: 2011, genre: "scifi" } },
    { id: "gone-girl", vector: [0.0, 0.2, 0.9], doc: "Gone Girl", meta: { year: 2012, genre: "thriller" } },
  ];
  const written = await call("Records", "Upsert", {
    collection: name,
    ids: books.map((b) => b.id),
    embeddings: packVectors(books.map((b) => b.vector)),
    documents: { values: books.map((b) => ({ value: b.doc })) },
    metadatas: { values: books.map((b) => toMetadata(b.meta)) },
  });
  emit("upsert", { inserted: written.inserted, updated: written.updated, unchanged: written.unchanged,
                   seq: written.seq });

  // 3. Query: nearest to a vector, only records with year >= 1980 (a FieldCondition).
  const where = { field: { path: "year", op: "GTE", value: { int_value: 1980 } } };
  const found = await call("Records", "Query", {
    collection: name,
    queries: packVectors([[1.0, 0.0, 0.0]]),
    n_results: 3,
    where,
    include: { documents: true, metadatas: true, distances: true },
  });
  const hits = found.results[0];
  emit("query", {
    ids: hits.ids,
    distances: hits.distances.map((d) => Number(d.toFixed(6))),
    documents: hits.documents.map((d) => d.value),
    years: hits.metadatas.map((m) => fromMetadata(m).year),
  });

  // The same filter, combined with another one: scifi AND NOT year < 1985.
  const both = { all_of: { filters: [
    { field: { path: "genre", op: "EQ", value: { string_value: "scifi" } } },
    { negation: { field: { path: "year", op: "LT", value: { int_value: 1985 } } } },
  ] } };
  const counted = await call("Records", "Count", { collection: name, where: both });
  emit("count", { where: "genre == scifi and not year < 1985", count: counted.count });

  // Read one record back, vector included.
  const got = await call("Records", "Get", { collection: name, ids: ["dune"],
                                             include: { embeddings: true, metadatas: true } });
  emit("get", { ids: got.ids, embeddings: unpackVectors(got.embeddings).map((r) => r.map((x) => Number(x.toFixed(6)))),
                metadata: fromMetadata(got.metadatas[0]) });

  // 4. Embed text with the built-in encoder, when the server has one.
  let models = [];
  let skipped = "the server has no built-in encoder";
  try {
    models = (await call("Encoder", "ListModels", {})).models;
  } catch (err) {
    const code = statusName(err);
    if (!["NOT_FOUND", "FAILED_PRECONDITION", "UNIMPLEMENTED"].includes(code)) throw err;
    skipped = `${code}: ${err.details}`;
  }
  if (models.length === 0) {
    emit("embed", { skipped: true, reason: skipped });
  } else {
    const texts = ["a cat sat on the mat", "a kitten rested on the rug", "quarterly tax filing deadline"];
    const embedded = await call("Encoder", "Embed", { texts });  // model "": the default
    const vectors = unpackVectors(embedded.vectors);
    const dot = (a, b) => a.reduce((s, x, i) => s + x * b[i], 0);
    emit("embed", {
      skipped: false,
      model: embedded.model.name,
      models: models.map((m) => m.name),
      dim: embedded.vectors.dim,
      count: embedded.vectors.count,
      norms: vectors.map((v) => Number(Math.sqrt(dot(v, v)).toFixed(4))),
      similarity: { cat_kitten: Number(dot(vectors[0], vectors[1]).toFixed(4)),
                    cat_tax: Number(dot(vectors[0], vectors[2]).toFixed(4)) },
    });

    // A collection with the encoder: the server embeds documents and query texts.
    const textName = "node-example-text";
    await dropCollection(call, textName);
    await call("Collections", "CreateCollection", { name: textName, metric: "COSINE", encoder: embedded.model.name });
    await call("Records", "Upsert", {
      collection: textName, ids: ["cat", "tax"],
      documents: { values: [{ value: texts[0] }, { value: texts[2] }] },
    });
    const byText = await call("Records", "Query", {
      collection: textName, query_texts: [texts[1]], n_results: 2, include: { distances: true },
    });
    emit("query_text", { query: texts[1], ids: byText.results[0].ids });
    await dropCollection(call, textName);
  }

  await dropCollection(call, name);
  emit("done", {});
}

main().catch((err) => {
  const code = err.code !== undefined ? statusName(err) : "ERROR";
  process.stderr.write(`error: ${code}: ${err.details || err.message}\n`);
  process.exit(1);
});
