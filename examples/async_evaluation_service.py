"""Evaluate an OpenAI-shaped chat client on 200 arithmetic cases concurrently, from async code.

The client is a local mock with the shape of `openai.AsyncOpenAI` (`await client.chat.completions
.create(...)`): it really solves each question, after a simulated network delay, and like a real model
it has a weakness (it estimates products of two-digit numbers instead of computing them). Each case
is one task and one sample: its latency, token counts and verdict are captured while the other 199
are in flight. The measured pass rate goes on the stage, and a deployment record marks the prompt
as selected when it clears the bar. Everything lands in ./.contexta/ (run it from a scratch directory).
"""

from __future__ import annotations

import operator
import os
import random
import re
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import anyio

from contexta import Contexta
from contexta.capture import LocalJsonlSink

CASES, SEED, PASS_BAR = 200, 11, 0.8
OPERATIONS = {"+": operator.add, "-": operator.sub, "*": operator.mul}


@dataclass(frozen=True)
class Case:
    name: str
    question: str
    expected: str


class _MockCompletions:
    def __init__(self, rng: random.Random):
        self._rng = rng

    async def create(self, *, model: str, messages: list[dict[str, str]]) -> SimpleNamespace:
        question = messages[-1]["content"]
        await anyio.sleep(self._rng.uniform(0.005, 0.040))  # the round trip to the "API"
        match = re.search(r"(-?\d+) ([+*-]) (-?\d+)", question)
        if match is None:
            answer = "I can only answer arithmetic questions."
        else:
            left, symbol, right = int(match[1]), match[2], int(match[3])
            result = OPERATIONS[symbol](left, right)
            if symbol == "*" and min(abs(left), abs(right)) >= 10:
                result = round(result, -1)  # the model's weakness: it estimates larger products
            answer = f"The answer is {result}."
        return SimpleNamespace(
            id=f"chatcmpl-mock-{model}",
            choices=[SimpleNamespace(message=SimpleNamespace(role="assistant", content=answer))],
            usage=SimpleNamespace(
                prompt_tokens=sum(len(message["content"].split()) for message in messages),
                completion_tokens=len(answer.split()),
            ),
        )


class MockAsyncOpenAI:
    """`client.chat.completions.create(model=..., messages=[...])`, awaited, like openai.AsyncOpenAI."""

    def __init__(self, seed: int):
        self.chat = SimpleNamespace(completions=_MockCompletions(random.Random(seed)))


def make_cases(count: int, seed: int) -> list[Case]:
    rng = random.Random(seed)
    cases = []
    for number in range(count):
        symbol = rng.choice(list(OPERATIONS))
        left, right = rng.randint(2, 99), rng.randint(2, 40)
        expected = str(OPERATIONS[symbol](left, right))
        cases.append(
            Case(f"case-{number:03d}", f"What is {left} {symbol} {right}? Reply with the number.", expected)
        )
    return cases


async def evaluate(ctx: Contexta, client: MockAsyncOpenAI, cases: list[Case]) -> tuple[str, float, str]:
    verdicts: list[bool] = []
    async with (
        ctx.arun(
            "arithmetic-eval",
            dataset_ref="dataset:local.arithmetic-cases",
            tags={"model": "gpt-4.1-mini-mock", "cases": len(cases)},
            config_snapshot={"seed": SEED, "pass_bar": PASS_BAR},
        ) as run,
        run.stage("evaluate") as stage,
    ):

        async def judge(case: Case) -> None:
            async with stage.sample(case.name) as sample:
                started = time.perf_counter()
                response = await client.chat.completions.create(
                    model="gpt-4.1-mini-mock", messages=[{"role": "user", "content": case.question}]
                )
                latency_ms = (time.perf_counter() - started) * 1000
                answer = response.choices[0].message.content
                correct = re.search(rf"(?<![\d-]){re.escape(case.expected)}(?!\d)", answer) is not None
                verdicts.append(correct)
                await sample.metrics(
                    {
                        "latency.ms": latency_ms,
                        "tokens.prompt": response.usage.prompt_tokens,
                        "tokens.completion": response.usage.completion_tokens,
                        "correct": float(correct),
                    }
                )
                await sample.event(
                    "response.judged",
                    message=answer,
                    level="info" if correct else "warning",
                    attributes={"expected": case.expected, "verdict": "pass" if correct else "fail"},
                )

        async with anyio.create_task_group() as group:
            for case in cases:
                group.start_soon(judge, case)
        pass_rate = sum(verdicts) / len(verdicts)
        await stage.metric("pass.rate", pass_rate, unit="ratio")
    deployment_ref = "(not deployed)"
    if pass_rate >= PASS_BAR:
        async with ctx.adeployment("arithmetic-prompt", run_ref=run.ref) as deployment:
            await deployment.event("prompt.selected", message=f"pass rate {pass_rate:.2f} cleared {PASS_BAR}")
            deployment_ref = deployment.ref
    return run.ref, pass_rate, deployment_ref


async def main() -> None:
    ctx = Contexta(workspace=".contexta", config={"project_name": "async-llm-eval"})
    records = next(sink for sink in ctx.sinks if isinstance(sink, LocalJsonlSink)).file_path_for("RECORD")
    cases = make_cases(CASES, SEED)
    started = time.perf_counter()
    run_ref, pass_rate, deployment_ref = await evaluate(ctx, MockAsyncOpenAI(SEED), cases)
    elapsed = time.perf_counter() - started
    samples = ctx.list_samples(run_ref)
    failed = sum(1 for point in ctx.get_metric_series(run_ref, "correct").points if point.value == 0.0)
    await ctx.aclose()
    print(f"Captured run: {run_ref}")
    passed = len(cases) - failed
    print(f"Measured pass rate: {pass_rate:.2f} ({passed}/{len(cases)} cases, {elapsed:.2f} s for all)")
    print(f"Samples in the store: {len(samples)}; failed cases: {failed}")
    print(f"Deployment: {deployment_ref}")
    print(f"Records: {Path(os.path.relpath(records)).as_posix()}")


if __name__ == "__main__":
    anyio.run(main)
