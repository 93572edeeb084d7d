"""Finding the external programs a local server needs: ``java`` (17+) and ``mvn``."""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
from pathlib import Path

from session_graph.runtime.errors import RuntimeSetupError

MIN_JAVA = 17
INSTALL_HINT = "on Debian/Ubuntu: apt-get install -y openjdk-17-jre-headless maven"

_VERSION_RE = re.compile(r'version "(\d+)(?:\.(\d+))?')


def find_java() -> str:
    """Path of a Java 17+ ``java``: ``$JAVA_HOME/bin/java`` if present, else ``java`` on PATH.

    Raises:
        RuntimeSetupError: no java, or one older than 17.
    """
    java_home = os.environ.get("JAVA_HOME")
    candidate = Path(java_home, "bin", "java") if java_home else None
    java = str(candidate) if candidate and candidate.is_file() else shutil.which("java")
    if java is None:
        raise RuntimeSetupError(
            f"Java {MIN_JAVA}+ is needed to run the local Neo4j server and was not found "
            f"(no $JAVA_HOME/bin/java, no java on PATH); {INSTALL_HINT}"
        )
    major = _java_major(java)
    if major < MIN_JAVA:
        raise RuntimeSetupError(
            f"{java} is Java {major}; Neo4j 5.26 needs Java {MIN_JAVA} or 21; {INSTALL_HINT} "
            "(or point JAVA_HOME at a newer JDK)"
        )
    return java


def find_mvn() -> str:
    """Path of ``mvn`` on PATH (used once, to fetch the Neo4j jars).

    Raises:
        RuntimeSetupError: Maven is not installed.
    """
    mvn = shutil.which("mvn")
    if mvn is None:
        raise RuntimeSetupError(
            "Maven (mvn) is needed once, to download the Neo4j jars, and was not found on "
            f"PATH; {INSTALL_HINT}"
        )
    return mvn


@functools.lru_cache(maxsize=8)
def _java_major(java: str) -> int:
    try:
        out = subprocess.run(
            [java, "-version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RuntimeSetupError(f"could not run {java} -version: {exc}; {INSTALL_HINT}") from exc
    match = _VERSION_RE.search(out.stderr + out.stdout)
    if match is None:
        raise RuntimeSetupError(f"could not read the Java version from {java} -version")
    major = int(match.group(1))
    # Java 8 and older report "1.8.0".
    return int(match.group(2) or 0) if major == 1 else major
