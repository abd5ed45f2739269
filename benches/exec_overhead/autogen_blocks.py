"""AutoGen 0.7.5's DockerCommandLineCodeExecutor on the same trivial block, for the
exec_overhead bench: prints one JSON line with its session start, per-block and stop times.

    python autogen_blocks.py IMAGE BLOCKS
"""

import asyncio
import json
import statistics
import sys
import tempfile
import time

from autogen_core import CancellationToken
from autogen_core.code_executor import CodeBlock
from autogen_ext.code_executors.docker import DockerCommandLineCodeExecutor


async def main(image: str, blocks: int) -> None:
    block = [CodeBlock(code="print(1)", language="python")]
    token = CancellationToken()
    with tempfile.TemporaryDirectory() as work:
        executor = DockerCommandLineCodeExecutor(image=image, work_dir=work, timeout=60)
        at = time.perf_counter()
        await executor.start()
        start = time.perf_counter() - at
        await executor.execute_code_blocks(block, token)  # warm-up, as on airlock's side
        samples = []
        for _ in range(blocks):
            at = time.perf_counter()
            result = await executor.execute_code_blocks(block, token)
            samples.append(time.perf_counter() - at)
            if result.exit_code != 0 or result.output.strip() != "1":
                raise SystemExit(f"unexpected result {result!r}")
        at = time.perf_counter()
        await executor.stop()
        stop = time.perf_counter() - at
    print(
        json.dumps(
            {
                "start_ms": start * 1000,
                "block_ms": statistics.median(samples) * 1000,
                "stop_ms": stop * 1000,
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
