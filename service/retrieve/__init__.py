"""Retrieval: retrievers (one module each, registered by name), their fusion, the hybrid."""

# Importing the retriever modules registers them (``service.retrieve.registry``), in this
# order: the defaults first, then the others (the order error messages list them in).
# isort: off
from service.retrieve import dense, lexical, bridge  # noqa: F401
# isort: on
