# Generates schema.h (field numbers, kinds and the method list) from agent.proto, so the C++ codec takes every
# field number from the proto: renaming, renumbering or retyping a field there breaks the agent's build instead of
# its wire format. Understands the subset agent.proto uses: flat messages, scalar/bytes/message fields, `repeated`,
# one service of unary rpcs. Fields named like C macros (stdin, stdout, stderr) get a trailing underscore.
# Usage: awk -f gen-schema.awk agent.proto > schema.h
{ sub(/\/\/.*/, ""); text = text " " $0 }
END {
	gsub(/[{};()=]/, " & ", text)
	n = split(text, tok, /[ \t]+/)
	print "// Generated from agent.proto by gen-schema.awk; do not edit."
	print "#pragma once"
	print "#include \"proto.h\""
	print "namespace schema {"
	methods = ""
	for (i = 1; i <= n; i++) {
		if (tok[i] == "package") { pkg = tok[i + 1]; sub(/;$/, "", pkg) }
		else if (tok[i] == "message") {
			msg = tok[i + 1]; i += 2 # past "{"
			printf "namespace %s {\n", msg
			for (i++; tok[i] != "}"; i++) {
				if (tok[i] == "") continue
				repeated = "false"
				if (tok[i] == "repeated") { repeated = "true"; i++ }
				type = tok[i]; name = tok[i + 1]; number = tok[i + 3] # type name = number ;
				if (tok[i + 2] != "=" || number !~ /^[0-9]+$/) { print "gen-schema: cannot parse field in " msg > "/dev/stderr"; exit 1 }
				kind = type in kinds ? kinds[type] : "Message"
				id = name (name ~ /^std(in|out|err)$/ ? "_" : "") # C macros of the same name
				printf "inline constexpr FieldSpec %s{%s, Kind::%s, %s, \"%s.%s\"};\n", id, number, kind, repeated, msg, name
				i += 4
			}
			printf "}  // namespace %s\n", msg
		} else if (tok[i] == "service") { service = tok[i + 1] }
		else if (tok[i] == "rpc") { # rpc Name ( Req ) returns ( Resp ) ;
			methods = methods sprintf(" \\\n  X(%s, %s, %s)", tok[i + 1], tok[i + 3], tok[i + 7])
		}
	}
	printf "inline constexpr char kService[] = \"%s.%s\";\n", pkg, service
	print "}  // namespace schema"
	printf "// X(method, request type, response type) for every rpc of the service.\n#define HAKO_AGENT_METHODS(X)%s\n", methods
}
BEGIN {
	kinds["bool"] = "Bool"; kinds["int32"] = "Int32"; kinds["int64"] = "Int64"
	kinds["uint32"] = "Uint32"; kinds["uint64"] = "Uint64"; kinds["string"] = "String"; kinds["bytes"] = "Bytes"
}
