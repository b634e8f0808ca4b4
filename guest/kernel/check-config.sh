#!/bin/bash
# Verify that every option of a config fragment survived in a final .config.
# "# CONFIG_X is not set" is satisfied when X is unset or absent (unselectable).
# Usage: check-config.sh FRAGMENT DOTCONFIG
set -euo pipefail
fragment=${1:?usage: check-config.sh FRAGMENT DOTCONFIG}
dotconfig=${2:?usage: check-config.sh FRAGMENT DOTCONFIG}

bad=0
while IFS= read -r line; do
	if [[ $line =~ ^(CONFIG_[A-Za-z0-9_]+)=(.*)$ ]]; then
		if ! grep -qxF -- "$line" "$dotconfig"; then
			actual=$(grep -E "^(# )?${BASH_REMATCH[1]}[= ]" "$dotconfig" || echo "(absent: dependency missing?)")
			echo "config: ${BASH_REMATCH[1]}: wanted '${BASH_REMATCH[2]}', got: $actual" >&2
			bad=1
		fi
	elif [[ $line =~ ^#\ (CONFIG_[A-Za-z0-9_]+)\ is\ not\ set$ ]]; then
		if grep -qE "^${BASH_REMATCH[1]}=" "$dotconfig"; then
			echo "config: ${BASH_REMATCH[1]}: wanted unset, got: $(grep -E "^${BASH_REMATCH[1]}=" "$dotconfig")" >&2
			bad=1
		fi
	fi
done <"$fragment"
if ((bad)); then
	echo "config: $fragment does not survive olddefconfig (see above)" >&2
	exit 1
fi
