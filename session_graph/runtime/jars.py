"""The Neo4j jar cache: one directory of jars per version, fetched once with Maven."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path

from rich.console import Console

from session_graph.runtime.errors import RuntimeSetupError
from session_graph.runtime.files import file_lock, tail, write_atomic
from session_graph.runtime.tools import INSTALL_HINT, find_mvn

MARKER = "COMPLETE.json"
SERVER_JAR_PREFIX = "neo4j-server-"

_POM = """\
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>session-graph</groupId>
  <artifactId>neo4j-runtime</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.neo4j</groupId>
      <artifactId>neo4j</artifactId>
      <version>{version}</version>
    </dependency>
  </dependencies>
</project>
"""


class JarCache:
    """``<home>/cache/neo4j-<version>/lib/*.jar``, shared by every instance under ``home``.

    A marker file listing the jars is written only after Maven finished and the jars were moved
    into place, so an interrupted download is redone and a complete cache is used offline.
    """

    def __init__(self, home: Path, version: str) -> None:
        self.version = version
        self.root = home / "cache" / f"neo4j-{version}"
        self.lib_dir = self.root / "lib"
        self.marker = self.root / MARKER

    @property
    def classpath(self) -> str:
        """The ``-cp`` value for ``java``."""
        return str(self.lib_dir / "*")

    def is_complete(self) -> bool:
        """True when the marker exists and every jar it lists is present."""
        try:
            jars = json.loads(self.marker.read_text(encoding="utf-8"))["jars"]
        except (OSError, ValueError, KeyError, TypeError):
            return False
        return bool(jars) and all((self.lib_dir / name).is_file() for name in jars)

    def ensure(self, *, console: Console | None = None, timeout: float = 1800.0) -> bool:
        """Make the cache complete, downloading with Maven if needed.

        Args:
            console: where progress goes (default: stderr).
            timeout: seconds Maven may take.

        Returns:
            True if jars were downloaded, False if the cache was already complete.

        Raises:
            RuntimeSetupError: Maven is missing or failed (the message holds its output).
        """
        if self.is_complete():
            return False
        with file_lock(self.root.with_name(self.root.name + ".lock"), what="jar cache lock"):
            if self.is_complete():  # another process finished while we waited
                return False
            self._download(console or Console(stderr=True), timeout)
        return True

    def _download(self, console: Console, timeout: float) -> None:
        mvn = find_mvn()
        self.root.mkdir(parents=True, exist_ok=True)
        self.marker.unlink(missing_ok=True)
        partial = self.root / "lib.partial"
        shutil.rmtree(partial, ignore_errors=True)
        pom = self.root / "pom.xml"
        pom.write_text(_POM.format(version=self.version), encoding="utf-8")
        log = self.root / "mvn.log"
        command = [
            mvn, "-B", "-q", "-f", str(pom),
            "dependency:copy-dependencies", f"-DoutputDirectory={partial}",
        ]  # fmt: skip
        started = time.monotonic()
        console.print(
            f"[bold]session_graph:[/] fetching Neo4j {self.version} jars with Maven "
            f"(about 125 MB, first start only) into {self.lib_dir}"
        )
        with (
            log.open("wb") as out,
            console.status(f"Downloading Neo4j {self.version} jars..."),
        ):
            try:
                done = subprocess.run(
                    command, stdout=out, stderr=subprocess.STDOUT, timeout=timeout, check=False
                )
            except subprocess.TimeoutExpired as exc:
                raise RuntimeSetupError(
                    f"Maven did not finish fetching Neo4j {self.version} within {timeout:.0f}s; "
                    f"see {log}"
                ) from exc
        jars = sorted(p.name for p in partial.glob("*.jar")) if partial.is_dir() else []
        if done.returncode != 0 or not any(j.startswith(SERVER_JAR_PREFIX) for j in jars):
            raise RuntimeSetupError(
                f"Maven could not fetch org.neo4j:neo4j:{self.version} (exit {done.returncode}); "
                f"check network access to Maven Central and that the version exists. "
                f"Maven output ({log}):\n{tail(log)}\n({INSTALL_HINT})"
            )
        shutil.rmtree(self.lib_dir, ignore_errors=True)
        partial.rename(self.lib_dir)
        size = sum((self.lib_dir / j).stat().st_size for j in jars)
        write_atomic(
            self.marker,
            json.dumps(
                {
                    "version": self.version,
                    "jars": jars,
                    "bytes": size,
                    "completed_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                },
                indent=1,
            ),
        )
        console.print(
            f"[bold]session_graph:[/] {len(jars)} jars ({size / 1e6:.0f} MB) "
            f"in {time.monotonic() - started:.1f}s"
        )
