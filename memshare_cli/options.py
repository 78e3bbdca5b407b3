"""Options shared by several commands, as ``Annotated`` aliases."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

Model = Annotated[str, typer.Option("--model", "-m", help="Alias (see 'memshare models'), hub id or local folder.")]
Dataset = Annotated[str, typer.Option("--dataset", "-d", help="math500, aime24, aime25 or gpqa-diamond.")]
DataFile = Annotated[Optional[str], typer.Option("--data-file", help="Local jsonl/json/parquet instead of the hub or packaged copy.")]
ProblemField = Annotated[Optional[str], typer.Option("--problem-field", help="Field holding the problem text in --data-file.")]
AnswerField = Annotated[Optional[str], typer.Option("--answer-field", help="Field holding the gold answer in --data-file.")]
IdField = Annotated[Optional[str], typer.Option("--id-field", help="Field holding a row id in --data-file.")]
Limit = Annotated[Optional[int], typer.Option("--limit", "-n", help="Use the first N problems.")]
Samples = Annotated[int, typer.Option("--samples", help="Samples per prompt (pass@1 is their mean).")]
MaxTokens = Annotated[int, typer.Option("--max-tokens", help="Generated tokens per sample, at most.")]
Temperature = Annotated[float, typer.Option("--temperature", help="0 = greedy.")]
TopP = Annotated[float, typer.Option("--top-p", help="Nucleus sampling mass.")]
Seed = Annotated[int, typer.Option("--seed", help="Seed for sampling, GPQA option order and the random policy.")]
BlockSize = Annotated[int, typer.Option("--block-size", help="Tokens per KV block (a multiple of 32 on CPU).")]
KVBlocks = Annotated[Optional[int], typer.Option("--kv-blocks", help="Cap the KV pool at N blocks: makes a memory-bound run on purpose.")]
TensorParallelSize = Annotated[int, typer.Option("--tensor-parallel-size", help="Ranks to shard the model over (vLLM tensor parallelism): GPUs, or CPU ranks on the CPU build (which gets a thread binding per rank).")]
MaxNumSeqs = Annotated[int, typer.Option("--max-num-seqs", help="Most requests running at once.")]
EnginePerRun = Annotated[bool, typer.Option("--engine-per-run", help="Start a fresh engine for every run (default: "
                                            "one engine per kind serves every policy, threshold and KV budget).")]
Out = Annotated[str, typer.Option("--out", "-o", help="Results folder; each run gets a subfolder.")]
Threads = Annotated[Optional[int], typer.Option("--threads", help="torch CPU threads (default: torch's choice).")]
Json = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of a table.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars; log lines only.")]
Force = Annotated[bool, typer.Option("--force", help="Start over instead of resuming finished samples.")]
