#!/bin/sh
# Builds the static guest agent: guest/agent/build.sh OUTDIR -> OUTDIR/hako-agent.
# schema.h (field numbers from agent.proto) is generated into OUTDIR/gen, never into the source tree.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:?usage: build.sh OUTDIR}
mkdir -p "$out/gen"
awk -f "$here/gen-schema.awk" "$here/agent.proto" >"$out/gen/schema.h.tmp"
mv "$out/gen/schema.h.tmp" "$out/gen/schema.h"
version=${HAKO_AGENT_VERSION:-0.1.0}
${CXX:-g++} -std=c++20 -Os -static -Wall -Wextra -Werror -fno-exceptions -fno-rtti \
	-DHAKO_AGENT_VERSION="\"$version\"" -I"$out/gen" -I"$here" \
	"$here"/main.cc "$here"/agent.cc "$here"/ttrpc.cc "$here"/event_loop.cc "$here"/messages.cc \
	"$here"/proto.cc "$here"/json.cc "$here"/system.cc \
	-Wl,--gc-sections -ffunction-sections -fdata-sections -s -o "$out/hako-agent"
echo "built $out/hako-agent ($(wc -c <"$out/hako-agent") bytes)"
