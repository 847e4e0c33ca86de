"""The framework alone: ``POST /v1/events`` with sessionrec's request and answer shapes and no
work in between (no model, no state store), served by the same FastAPI / uvicorn stack.

``benchmarks/serve_open_loop.py --scenarios framework:1`` measures it beside the real
server: what a request costs before sessionrec does anything (the floor of the server CPU
column), and what latency the load generator itself can measure on this machine.
"""

from __future__ import annotations

from fastapi import FastAPI
from pydantic import BaseModel

app = FastAPI()
ANSWER = [str(1_000_000 + i) for i in range(20)]


class Event(BaseModel):
    session_id: str
    product_id: int | str


class Answer(BaseModel):
    session_id: str
    products: list[int | str]
    model: str
    fallback: bool


@app.post("/v1/events")
async def event(body: Event) -> Answer:
    return Answer(session_id=body.session_id, products=ANSWER, model="none", fallback=False)


@app.get("/readyz")
async def ready() -> dict:
    return {"ready": True}
