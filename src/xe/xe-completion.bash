# bash completion for xe (xapid's or XenServer's): the server is asked,
# as XenServer's completion does: command names from `xe help --all
# --minimal`, a command's parameters from `xe help <command>`, and uuid=
# values from `xe <class>-list --minimal`.
_xe()
{
    local cur="${COMP_WORDS[COMP_CWORD]}" cmd="" w i
    local -a conn=()
    for ((i = 1; i < COMP_CWORD; i++)); do
        w="${COMP_WORDS[i]}"
        case "$w" in
            -s|-p|-u|-pw|-pwf) conn+=("$w" "${COMP_WORDS[i + 1]}"); ((i++)) ;;
            --nossl) conn+=("$w") ;;
            *=*|--*) ;;
            *) [[ -z "$cmd" ]] && cmd="$w" ;;
        esac
    done
    if [[ -z "$cmd" ]]; then
        COMPREPLY=($(compgen -W "$(xe "${conn[@]}" help --all --minimal 2>/dev/null | tr ',' ' ')" -- "$cur"))
        return
    fi
    if [[ "$cur" == uuid=* || "$cur" == *-uuid=* ]]; then
        local key="${cur%%=*}" class="${cmd%%-*}"
        [[ "$key" != uuid ]] && class="${key%-uuid}"
        local uuids
        uuids="$(xe "${conn[@]}" "$class-list" params=uuid --minimal 2>/dev/null | tr ',' ' ')"
        COMPREPLY=($(compgen -P "$key=" -W "$uuids" -- "${cur#*=}"))
        return
    fi
    local params
    params="$(xe "${conn[@]}" help "$cmd" 2>/dev/null |
              sed -n 's/^ *\(reqd\|optional\) params *: //p' | tr -d ',' | tr ' ' '\n' |
              grep -v '^<' | sed 's/[^:]$/&=/')"
    compopt -o nospace 2>/dev/null
    COMPREPLY=($(compgen -W "$params" -- "$cur"))
}
complete -F _xe xe
