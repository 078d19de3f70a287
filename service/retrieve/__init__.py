"""Retrieval: retrievers (one module each, registered by name), their fusion, the hybrid."""

# Importing the retriever modules registers them (``service.retrieve.registry``).
from service.retrieve import bridge, dense, lexical  # noqa: F401
