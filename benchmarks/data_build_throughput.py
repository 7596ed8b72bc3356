"""Throughput and peak memory of `xling-align data build` on a synthetic Bactrian-X-format folder.

Writes N languages x M items (JSON arrays, item sizes close to Bactrian-X: ~100-character instruction,
input on a third of the items, ~400-character output), then runs the build in a child process and
reports items read per second, rows written per second and the child's peak resident memory. Compare
the peak memory across --items / --languages to see that it follows one language, not the whole input.

    python benchmarks/data_build_throughput.py --languages 2 --items 50000
    python benchmarks/data_build_throughput.py --languages 4 --items 50000 --mode pivot
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CODES = ["en", "de", "zh", "fr", "es", "ru", "ar", "sw", "hi", "ja"]
WORDS = "alpha beta gamma delta water light house river stone cloud bread music garden yellow quiet".split()


def sentence(rng: random.Random, characters: int) -> str:
    words, size = [], 0
    while size < characters:
        word = rng.choice(WORDS)
        words.append(word)
        size += len(word) + 1
    return " ".join(words).capitalize() + "."


def write_language(path: Path, language: str, items: int, seed: int) -> None:
    """One `<lang>.json` array, written element by element (the generator holds no item list)."""
    rng = random.Random(f"{seed}-{language}")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("[\n")
        for index in range(items):
            item = {
                "instruction": f"[{language}] " + sentence(rng, 100),
                "input": sentence(rng, 60) if index % 3 == 0 else "",
                "id": f"synthetic-{index}",
                "output": sentence(rng, 400),
            }
            handle.write(("" if index == 0 else ",\n") + "  " + json.dumps(item, ensure_ascii=False))
        handle.write("\n]\n")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--languages", type=int, default=2, help="number of languages (2-10)")
    parser.add_argument("--items", type=int, default=50_000, help="items per language")
    parser.add_argument(
        "--mode", choices=("bilingual", "pivot"), default=None, help="default: bilingual for 2 languages"
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", help="folder to keep the synthetic data and output in (default: a temp folder)")
    args = parser.parse_args(argv)
    codes = CODES[: max(2, min(args.languages, len(CODES)))]
    mode = args.mode or ("bilingual" if len(codes) == 2 else "pivot")

    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="xling-data-bench-"))
    folder = work / "bactrian"
    folder.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    for code in codes:
        write_language(folder / f"{code}.json", code, args.items, seed=0)
    size = sum(path.stat().st_size for path in folder.iterdir())
    print(
        f"generated {len(codes)} x {args.items} items ({size / 2**20:.0f} MiB) in {time.perf_counter() - start:.1f} s"
    )

    output = work / "rows.jsonl"
    command = [
        sys.executable,
        "-m",
        "xling_align",
        "data",
        "build",
        "--source",
        "bactrian-x",
        "--input-dir",
        str(folder),
        "--languages",
        *codes,
        "--mode",
        mode,
        "--repeat",
        str(args.repeat),
        "--seed",
        "0",
        "--output",
        str(output),
    ]
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode:
        print(result.stdout, result.stderr, file=sys.stderr)
        return result.returncode
    peak_rss_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # Linux: kilobytes
    with open(output, "rb") as handle:
        rows = sum(1 for _ in handle)
    items = len(codes) * args.items
    print(f"command: {' '.join(command[1:])}")
    print(f"mode {mode}, languages {' '.join(codes)}, repeat {args.repeat}")
    print(f"build wall time {seconds:.1f} s (includes ~1-2 s of Python start-up and imports)")
    print(f"items read: {items} -> {items / seconds:,.0f} items/s")
    print(f"rows written: {rows} -> {rows / seconds:,.0f} rows/s ({output.stat().st_size / 2**20:.0f} MiB)")
    print(f"peak RSS of the build process: {peak_rss_mib:.0f} MiB (input on disk: {size / 2**20:.0f} MiB)")
    if not args.keep:
        for path in sorted(work.rglob("*"), reverse=True):
            path.unlink() if path.is_file() else path.rmdir()
        work.rmdir()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
