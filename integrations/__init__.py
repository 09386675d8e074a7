"""vectord inside RAG frameworks: LangChain and LlamaIndex vector stores.

Each module imports its framework, so install the matching extra first:

    pip install "vectord[langchain]"     # vectord.integrations.langchain
    pip install "vectord[llamaindex]"    # vectord.integrations.llamaindex

``import vectord`` never imports this package: the SDK stays free of both frameworks.
"""
