#!/usr/bin/env bash
# Builds the Kotlin bindings with plain kotlinc (no Gradle, no Maven):
#   <target>/kotlin/streamhub.jar        generated bindings + the dev.streamhub layer
#   <target>/kotlin/streamhub-tests.jar  JUnit tests, the call-cost benchmark and
#                                        examples/kotlin (compiled so they cannot rot)
#   <target>/kotlin/runtime.classpath    what an app needs beside streamhub.jar
#   <target>/kotlin/test.classpath       everything the tests run with
# Two kotlinc runs at most (about 11 s each); a jar newer than its inputs is kept.
#
# kotlinc: $KOTLIN_HOME/bin/kotlinc, else kotlinc on PATH, else
# <target>/kotlin-compiler/package (bindings/kotlin/install-kotlinc.sh puts it there).
# JNA, JUnit 4 and Hamcrest: Debian's libjna-java and junit4 (override with JNA_JAR,
# JUNIT_JAR, HAMCREST_JAR). <target> is $CARGO_TARGET_DIR or target/.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
out="$target/kotlin"

if [ -n "${KOTLIN_HOME:-}" ]; then
    kotlinc="$KOTLIN_HOME/bin/kotlinc"
elif command -v kotlinc >/dev/null; then
    kotlinc="$(readlink -f "$(command -v kotlinc)")"
    KOTLIN_HOME="$(cd "$(dirname "$kotlinc")/.." && pwd)"
else
    KOTLIN_HOME="$target/kotlin-compiler/package"
    kotlinc="$KOTLIN_HOME/bin/kotlinc"
fi
if [ ! -x "$kotlinc" ]; then
    echo "build.sh: kotlinc not found (KOTLIN_HOME, PATH, $target/kotlin-compiler/package):" \
        "run bindings/kotlin/install-kotlinc.sh" >&2
    exit 3
fi
lib="$KOTLIN_HOME/lib"
jna="${JNA_JAR:-/usr/share/java/jna.jar}"
junit="${JUNIT_JAR:-/usr/share/java/junit4.jar}"
hamcrest="${HAMCREST_JAR:-/usr/share/java/hamcrest-core.jar}"
for jar in "$lib/kotlin-stdlib.jar" "$lib/kotlinx-coroutines-core-jvm.jar" "$lib/kotlin-test.jar" \
    "$lib/kotlin-test-junit.jar" "$jna" "$junit" "$hamcrest"; do
    [ -f "$jar" ] || { echo "build.sh: $jar is missing (apt-get install -y libjna-java junit4)" >&2; exit 3; }
done

runtime_cp="$lib/kotlin-stdlib.jar:$lib/kotlinx-coroutines-core-jvm.jar:$jna"
test_libs="$lib/kotlin-test.jar:$lib/kotlin-test-junit.jar:$junit:$hamcrest"
mkdir -p "$out"

# True when $1 is missing or older than any file under the other arguments.
stale() {
    local jar="$1"
    shift
    [ ! -f "$jar" ] || [ -n "$(find "$@" -type f -newer "$jar" -print -quit)" ]
}

# Compiles into a temporary jar and renames it: an interrupted compile leaves no jar
# that looks up to date.
compile() {
    local jar="$1"
    shift
    echo "kotlinc -> $jar"
    "$kotlinc" -jvm-target 17 -d "$jar.tmp.jar" "$@"
    mv "$jar.tmp.jar" "$jar"
}

main_src="$here/src/main/kotlin"
test_src="$here/src/test/kotlin"
examples="$root/examples/kotlin"
if stale "$out/streamhub.jar" "$main_src" "$here/build.sh"; then
    compile "$out/streamhub.jar" -module-name streamhub -cp "$runtime_cp" "$main_src"
fi
if stale "$out/streamhub-tests.jar" "$test_src" "$examples" "$out/streamhub.jar"; then
    # -Xfriend-paths: the tests may use the layer's `internal` test hooks.
    compile "$out/streamhub-tests.jar" -module-name streamhub-tests \
        -Xfriend-paths="$out/streamhub.jar" \
        -cp "$out/streamhub.jar:$runtime_cp:$test_libs" "$test_src" "$examples"
fi
echo "$runtime_cp" >"$out/runtime.classpath"
echo "$out/streamhub.jar:$out/streamhub-tests.jar:$runtime_cp:$test_libs" >"$out/test.classpath"
echo "built $out/streamhub.jar $out/streamhub-tests.jar"
