"""Request bodies. Our own routes forbid unknown fields, so a typo is a 422 naming it, not a silent default.

The OpenAI-compatible body ignores unknown fields instead: SDKs and clients send many optional
parameters (temperature, user, ...) that have no meaning for a grounded answer.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SESSION_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$"


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AskBody(_Body):
    question: str = Field(min_length=1, description="The question, answered only from the indexed documents.")
    k: int | None = Field(None, ge=1, le=100, description="Chunks to retrieve (default: the server's RAG_K).")
    source: str | None = Field(None, max_length=500, description="Only sources matching this glob, e.g. 'uploads/*'.")


class ChatBody(AskBody):
    session_id: str | None = Field(None, pattern=SESSION_PATTERN,
                                   description="Conversation to continue and save; omit for a one-off turn.")
    stream: bool = Field(False, description="Send Server-Sent Events: `delta` events, then one `answer` event.")


class SearchBody(_Body):
    query: str = Field(min_length=1, description="Words to search for (BM25).")
    k: int | None = Field(None, ge=1, le=100, description="Number of hits (default: the server's RAG_K).")
    source: str | None = Field(None, max_length=500, description="Only sources matching this glob.")


class DocumentBody(_Body):
    filename: str = Field(min_length=1, max_length=255, description="Used for the type (.txt .md .rst .html .jsonl) and "
                          "the id; send .pdf and .docx files as multipart uploads.")
    content: str = Field(description="The file's text.")


class BriefingBody(_Body):
    doc_ids: list[str] | None = Field(None, min_length=1, max_length=1000,
                                      description="Documents to brief on (default: every indexed document).")
    title: str | None = Field(None, max_length=200, description="Briefing title.")
    concurrency: int = Field(4, ge=1, le=16, description="Documents summarized in parallel.")


# ------------------------------------------------------------------ OpenAI-compatible
class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[dict[str, Any]] | None = None

    @property
    def text(self) -> str:
        if isinstance(self.content, list):
            return "\n".join(str(p.get("text", "")) for p in self.content if p.get("type") == "text")
        return self.content or ""


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")

    include_usage: bool = False


class ChatCompletionsBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: str = Field("rag", description="`rag` (or one of RAG_SERVER__MODEL_ALIASES); any other name is 404 "
                                          "model_not_found. Answers come from this server's index and backend.")
    messages: list[ChatMessage] = Field(min_length=1, max_length=200)
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(None, ge=1, le=65536, description="Longest answer in tokens: passed to the backend; "
                                   "a longer answer is cut there with finish_reason `length`.")
    max_completion_tokens: int | None = Field(None, ge=1, le=65536, description="Newer name of max_tokens (wins if both).")
    temperature: float | None = Field(None, ge=0, le=2, description="Passed to the model backend; the offline engine "
                                      "is deterministic and ignores it.")

    @property
    def token_limit(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens
