#!/usr/bin/env bash
# Kaldi-style option parsing, sourced by scripts: `--some-option value` or `--some_option value`
# sets the shell variable `some_option`, which the script must have defined (with its default)
# before sourcing this file. `--help` prints the script's `help_message` and exits.
# Positional arguments are left in "$@". An option renamed in this release (conf/renamed.txt) fails
# with an error naming its new name.

while [ $# -gt 0 ]; do
    case "$1" in
        --help|-h)
            printf '%s\n' "${help_message:-No help for $0}"
            exit 0 ;;
        --*=*)
            set -- "${1%%=*}" "${1#*=}" "${@:2}"
            continue ;;
        --*)
            name="${1#--}"
            name="${name//-/_}"
            if [ -z "${!name+set}" ] || ! [[ "${name}" =~ ^[a-zA-Z_][a-zA-Z0-9_]*$ ]]; then
                renamed="$(awk -v old="--${name}" '$1 == old { print $2 }' \
                    "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../../../../conf/renamed.txt" 2>/dev/null || true)"
                if [ -n "${renamed}" ]; then
                    echo "$0: option $1 was renamed to ${renamed}" >&2
                    exit 1
                fi
                echo "$0: unknown option $1 (see $0 --help)" >&2
                exit 1
            fi
            if [ $# -lt 2 ]; then
                echo "$0: option $1 needs a value" >&2
                exit 1
            fi
            # Booleans must stay true/false so scripts can test them as commands' outcomes.
            case "${!name}" in
                true|false)
                    [[ "$2" == true || "$2" == false ]] \
                        || { echo "$0: option $1 takes true or false, got '$2'" >&2; exit 1; } ;;
            esac
            printf -v "${name}" '%s' "$2"
            shift 2 ;;
        *)
            break ;;
    esac
done
unset name renamed
