"""The pipeline a user would write in twenty lines with the same stack, as the
baseline of ``rag eval --compare naive``: llama-index ``VectorStoreIndex`` over Chroma,
the default ``SentenceSplitter`` (1024 tokens, 200 overlap), the same embedding, top 5.

It has no answer step of its own without an LLM, so it is scored as such a pipeline
shows its results: the answer is the top passages, cited as they are (the first
``max_citations`` retrieved nodes, quoted whole), and it never abstains.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from rag.config import Settings
from rag.eval.metrics import Reply, Retrieved
from rag.index import corpus
from rag.index.embedding import load_embedding, model_id
from rag.index.store import chroma_client
from rag.types import Answer, Citation

TOP_K = 5


class NaivePipeline:
    """The naive baseline (module doc); an ``Asker`` of rag/eval/runner.py."""

    def __init__(self, settings: Settings) -> None:
        from llama_index.core import Document, StorageContext, VectorStoreIndex
        from llama_index.core.node_parser import SentenceSplitter
        from llama_index.vector_stores.chroma import ChromaVectorStore

        self.settings = settings
        loaded = corpus.load(settings.corpus_dir)
        self.documents = {d.doc_id: d for d in loaded.documents}
        embedding = load_embedding(settings.embedding)
        digest = hashlib.sha256(
            (model_id(embedding) + "".join(d.sha256 for d in loaded.documents)).encode()
        ).hexdigest()[:16]
        folder: Path = settings.data_dir / "naive" / digest
        fresh = not folder.exists()
        client = chroma_client(folder)
        collection = client.get_or_create_collection("naive")
        store = ChromaVectorStore(chroma_collection=collection)
        if fresh or collection.count() == 0:
            docs = [
                Document(text=d.text, metadata={"source": d.doc_id}, id_=d.doc_id)
                for d in loaded.documents
            ]
            index = VectorStoreIndex.from_documents(
                docs,
                storage_context=StorageContext.from_defaults(vector_store=store),
                embed_model=embedding,
                transformations=[SentenceSplitter()],
            )
        else:
            index = VectorStoreIndex.from_vector_store(store, embed_model=embedding)
        self.retriever = index.as_retriever(similarity_top_k=TOP_K)

    def ask(self, question: str, conversation_id: str | None, top_k: int | None) -> Reply:
        """The top passages, cited whole; never abstains, so it has no abstention
        score (``conversation_id`` and ``top_k`` are ignored)."""
        nodes = self.retriever.retrieve(question)
        retrieved = [Retrieved(n.node.metadata["source"], n.node.get_content()) for n in nodes]
        citations = []
        for i, n in enumerate(nodes[: self.settings.max_citations], start=1):
            source = n.node.metadata["source"]
            text = self.documents[source].text
            start = getattr(n.node, "start_char_idx", None) or 0
            end = getattr(n.node, "end_char_idx", None) or len(text)
            citations.append(
                Citation(
                    n=i,
                    source=source,
                    title=self.documents[source].title,
                    start_char=start,
                    end_char=end,
                    start_line=text.count("\n", 0, start) + 1,
                    end_line=text.count("\n", 0, end) + 1,
                    quote=text[start:end],
                    lang=self.documents[source].lang,
                    score=round(float(n.score or 0.0), 4),
                )
            )
        body = " ".join(f"[{c.n}]" for c in citations)
        answer = Answer(answer=body, citations=citations, abstained=False, mode="naive")
        return Reply(answer, retrieved)

    def source_text(self, source: str) -> str | None:
        """The text of an indexed file, or None."""
        doc = self.documents.get(source)
        return doc.text if doc else None
