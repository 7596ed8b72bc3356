"""`xling-align analyze`: how aligned are a model's languages, layer by layer (and before / after AFP).

    xling-align analyze --model DIR [--compare DIR2] --pairs FILE [--layers all|1,6,12] --output OUT

OUT receives `metrics.json` (per model, language pair and layer; and the held-out perplexity of each
language's sentences per model, whose change with --compare shows what alignment cost), `summary.md`, and PNG
plots: metrics versus layer (base and compared model on the same charts) and a 2-D PCA projection of sentence
vectors coloured by language, one panel per model. Sentence vectors are cached in OUT/embeddings_cache (or
--cache-dir), so re-running with other plots or metrics does not embed again.
"""

from __future__ import annotations

import argparse
import sys


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xling-align analyze",
        description="Measure and plot how close translations are in a model's hidden states, per layer: "
        "translation retrieval both ways, MEXA alignment score, cosine of true vs random pairs, language "
        "separability. With --compare, both models go on the same charts (e.g. base vs AFP-aligned).",
    )
    parser.add_argument(
        "--model", required=True, help="model folder (save_pretrained), LoRA adapter folder, or cached hub id"
    )
    parser.add_argument("--compare", help="a second model to put on the same charts (e.g. the aligned checkpoint)")
    parser.add_argument(
        "--pairs", required=True, help="parallel file (TSV/CSV with a header naming two languages, or JSONL)"
    )
    parser.add_argument(
        "--languages",
        nargs=2,
        metavar=("LANG_A", "LANG_B"),
        help="the two language columns (or JSON keys) of --pairs to read, for a file with more than two",
    )
    parser.add_argument(
        "--skip-invalid",
        action="store_true",
        help="skip malformed records of --pairs (counted and reported) instead of stopping at the first",
    )
    parser.add_argument("--output", required=True, help="folder for metrics.json, summary.md and the PNG plots")
    parser.add_argument(
        "--layers",
        default="all",
        help="'all' or comma-separated hidden-state indices (0 = embeddings, -1 = last); default all",
    )
    parser.add_argument(
        "--pooling",
        choices=("mean", "last"),
        default="mean",
        help="sentence vector: mean over tokens or last token (default mean)",
    )
    parser.add_argument("--batch-size", type=int, default=32, help="sentences per forward pass (default 32)")
    parser.add_argument(
        "--max-length", type=int, default=512, help="truncate sentences to this many tokens (default 512)"
    )
    parser.add_argument("--max-pairs", type=int, help="use at most this many pairs per language pair (default: all)")
    parser.add_argument("--cache-dir", help="embeddings cache folder (default OUTPUT/embeddings_cache)")
    parser.add_argument("--no-cache", action="store_true", help="keep vectors in a temporary folder deleted at the end")
    parser.add_argument(
        "--projection-layer", type=int, help="layer of the 2-D projection plot (default: best retrieval layer)"
    )
    parser.add_argument("--tsne", action="store_true", help="also draw a t-SNE projection (needs scikit-learn)")
    parser.add_argument(
        "--no-separability", action="store_true", help="skip the language probe and silhouette (faster)"
    )
    parser.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: cuda if available)")
    parser.add_argument(
        "--dtype",
        default="float32",
        choices=("float32", "bfloat16", "float16", "auto"),
        help="weights dtype (default float32)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of subsamples and of the probe's split")
    parser.add_argument(
        "--no-perplexity",
        action="store_true",
        help="skip the held-out perplexity of each language's sentences (with --compare it shows "
        "what alignment cost each language)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    from xling_align.analysis.analyzer import AnalysisSettings
    from xling_align.analysis.pipeline import run_analysis
    from xling_align.errors import XlingAlignError

    try:
        settings = AnalysisSettings(
            layers=args.layers,
            pooling=args.pooling,
            batch_size=args.batch_size,
            max_length=args.max_length,
            separability=not args.no_separability,
            seed=args.seed,
        )
        written = run_analysis(
            args.model,
            args.pairs,
            args.output,
            compare=args.compare,
            settings=settings,
            max_pairs=args.max_pairs,
            cache_dir="" if args.no_cache else args.cache_dir,
            projection_layer=args.projection_layer,
            tsne=args.tsne,
            device=args.device,
            dtype=args.dtype,
            skip_invalid=args.skip_invalid,
            languages=tuple(args.languages) if args.languages else None,
            perplexity=not args.no_perplexity,
        )
    except (XlingAlignError, ValueError, FileNotFoundError) as error:
        print(f"xling-align analyze: error: {error}", file=sys.stderr)
        return 2
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
