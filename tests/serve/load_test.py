"""A bounded load test of `wgpt serve` on loopback: a fixed number of streamed chat requests at
each concurrency level, stopped early at a time limit. Prints requests/s, generated tokens/s,
and p50/p99 of latency and time to first token.

    python tests/serve/load_test.py --base http://127.0.0.1:PORT/v1 --model scripted \
        --concurrency 1,4,16 --requests 32 --max-seconds 120
"""

import argparse
import concurrent.futures
import statistics
import time
import urllib.parse

from openai import OpenAI


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, round((len(values) - 1) * p))]


def one_request(client, model, max_tokens, deadline):
    if time.time() > deadline:
        return None
    t0 = time.perf_counter()
    first = None
    tokens = 0
    stream = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "Hello! Who are you?"}],
        max_tokens=max_tokens,
        stream=True,
        stream_options={"include_usage": True},
    )
    for chunk in stream:
        if first is None and chunk.choices and (chunk.choices[0].delta.content or (chunk.choices[0].delta.model_extra or {}).get("reasoning_content")):
            first = time.perf_counter() - t0
        if chunk.usage:
            tokens = chunk.usage.completion_tokens
    return time.perf_counter() - t0, first or 0.0, tokens


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", required=True)
    ap.add_argument("--model", default="scripted")
    ap.add_argument("--concurrency", default="1,4,16")
    ap.add_argument("--requests", type=int, default=32, help="requests per concurrency level")
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--max-seconds", type=float, default=120, help="time limit per level")
    a = ap.parse_args()
    host = urllib.parse.urlparse(a.base).hostname
    assert host in ("127.0.0.1", "localhost", "::1"), "loopback only"
    client = OpenAI(base_url=a.base, api_key="none", max_retries=0, timeout=600)
    print("| streams | requests | requests/s | tokens/s | latency p50 | latency p99 | TTFT p50 | TTFT p99 |")
    print("|---|---|---|---|---|---|---|---|")
    for c in [int(x) for x in a.concurrency.split(",")]:
        deadline = time.time() + a.max_seconds
        t0 = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(c) as pool:
            results = [r for r in pool.map(lambda _: one_request(client, a.model, a.max_tokens, deadline), range(a.requests)) if r]
        wall = time.perf_counter() - t0
        lat = [r[0] for r in results]
        ttft = [r[1] for r in results]
        tokens = sum(r[2] for r in results)
        print(
            f"| {c} | {len(results)} | {len(results) / wall:.2f} | {tokens / wall:.1f} | "
            f"{percentile(lat, 0.5):.2f} s | {percentile(lat, 0.99):.2f} s | "
            f"{percentile(ttft, 0.5):.2f} s | {percentile(ttft, 0.99):.2f} s |",
            flush=True,
        )
        assert statistics.mean(r[2] for r in results) > 0


if __name__ == "__main__":
    main()
