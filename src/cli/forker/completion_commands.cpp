// `forker completion bash|zsh`: a completion script made from the command tree CLI11 holds, so
// it follows every command and flag as they are added. Containers and images are completed at
// completion time by asking the same forker binary (`ps -a --format '{{.Names}}'`, `images
// --format ...`), with the --storage-root typed on the line.
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "cli/forker/cli.hpp"

namespace forker::cli {
namespace {

// What the shell needs to know about one command, e.g. "image ls".
struct CommandSpec {
  std::string path;  // words after "forker"; empty for forker itself
  std::vector<std::pair<std::string, std::string>> subcommands;  // name, description
  std::vector<std::string> flags;   // every option name (-d, --detach, --memory)
  std::vector<std::string> valued;  // the names that take a value in the next word
  // What each positional argument is: "container", "image" or "-" (anything: files). A
  // trailing "..." repeats the last.
  std::vector<std::string> args;
  bool prefix = false;  // the words after the first argument are a command (run, exec)
};

// Commands that take the rest of the line as they are (CLI11's prefix_command) declare no
// positional: what their first word is.
const std::map<std::string, std::string> kPrefixArgument = {{"run", "image"},
                                                            {"exec", "container"}};

std::string argument_kind(const std::string& name) {
  if (name == "container") return "container";
  if (name == "image" || name == "source" || name == "repository") return "image";
  return "-";
}

void walk(const CLI::App* app, const std::string& path, std::vector<CommandSpec>& out) {
  CommandSpec spec;
  spec.path = path;
  spec.prefix = app->get_prefix_command();
  for (const CLI::Option* opt : app->get_options()) {
    if (opt->get_group().empty()) continue;  // hidden
    if (!opt->nonpositional()) {
      std::string kind = argument_kind(opt->get_name(true));
      if (opt->get_items_expected_max() > 1) kind += "...";
      spec.args.push_back(kind);
      continue;
    }
    bool takes_value = opt->get_items_expected_max() > 0;  // flags expect 0 items
    for (const auto& s : opt->get_snames()) {
      spec.flags.push_back("-" + s);
      if (takes_value) spec.valued.push_back("-" + s);
    }
    for (const auto& l : opt->get_lnames()) {
      spec.flags.push_back("--" + l);
      if (takes_value) spec.valued.push_back("--" + l);
    }
  }
  if (auto it = kPrefixArgument.find(path); it != kPrefixArgument.end() && spec.args.empty())
    spec.args.push_back(it->second);
  std::vector<const CLI::App*> subs = app->get_subcommands([](const CLI::App*) { return true; });
  for (const CLI::App* sub : subs)
    spec.subcommands.emplace_back(sub->get_name(), sub->get_description());
  out.push_back(std::move(spec));
  for (const CLI::App* sub : subs)
    walk(sub, path.empty() ? sub->get_name() : path + " " + sub->get_name(), out);
}

std::string join_words(const std::vector<std::string>& words) {
  std::string s;
  for (const auto& w : words) s += (s.empty() ? "" : " ") + w;
  return s;
}

// 'text' for either shell: a ' inside becomes '\''.
std::string quoted(const std::string& text) {
  std::string s = "'";
  for (char c : text) s += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return s + "'";
}

// The case statement both scripts share: _forker_spec PATH sets the _forker_* variables.
std::string spec_function(const std::vector<CommandSpec>& specs, bool zsh) {
  std::string s =
      "_forker_spec() {\n"
      "  _forker_subs='' _forker_flags='' _forker_valued='' _forker_args='' _forker_prefix=''\n";
  if (zsh) s += "  _forker_subdesc=()\n";
  s += "  case \"$1\" in\n";
  for (const auto& c : specs) {
    std::vector<std::string> names;
    for (const auto& [name, desc] : c.subcommands) names.push_back(name);
    s += "    " + quoted(c.path) + ")\n";
    s += "      _forker_subs=" + quoted(join_words(names)) + "\n";
    s += "      _forker_flags=" + quoted(join_words(c.flags)) + "\n";
    s += "      _forker_valued=" + quoted(join_words(c.valued)) + "\n";
    s += "      _forker_args=" + quoted(join_words(c.args)) + "\n";
    if (c.prefix) s += "      _forker_prefix=1\n";
    if (zsh && !c.subcommands.empty()) {
      s += "      _forker_subdesc=(";
      for (const auto& [name, desc] : c.subcommands) s += "\n        " + quoted(name + ":" + desc);
      s += "\n      )\n";
    }
    s += "      ;;\n";
  }
  return s + "  esac\n}\n";
}

// Lists containers or images with the forker being completed, as plain words.
constexpr const char* kQueryFunction = R"sh(
# _forker_query container|image FORKER [STORAGE_ROOT]
_forker_query() {
  local -a cmd
  cmd=("${2/#\~/$HOME}")
  [[ -n $3 ]] && cmd+=(--storage-root "$3")
  case "$1" in
    container) "${cmd[@]}" ps -a --format '{{.Names}}' 2>/dev/null ;;
    image)
      "${cmd[@]}" images --format '{{.Repository}}:{{.Tag}}' 2>/dev/null |
        while read -r line; do [[ $line == *:'<none>' ]] || printf '%s\n' "$line"; done ;;
  esac
}
)sh";

// Walks the words before the cursor: into subcommands, over option values, counting
// positional arguments. One text for both shells: in zsh the functions switch to bash's array
// indexing (ksharrays, from 0) and word splitting (shwordsplit) for their own duration.
constexpr const char* kScanFunction = R"sh(
# _forker_scan CURSOR WORD...: the line's words (forker first) and the cursor's index among
# them. Sets _forker_nargs (positional arguments so far), _forker_skip (the cursor is on the
# value of that option), _forker_root (--storage-root), and the command's _forker_spec.
_forker_scan() {
  [[ -n ${ZSH_VERSION-} ]] && setopt localoptions ksharrays shwordsplit
  local cursor=$1 i word cmdpath=''
  shift
  local -a w
  w=("$@")
  _forker_nargs=0 _forker_skip='' _forker_root=''
  _forker_spec ''
  for (( i = 1; i < cursor; i++ )); do
    word=${w[i]}
    if [[ -n $_forker_skip ]]; then
      [[ $_forker_skip == --storage-root ]] && _forker_root=$word
      _forker_skip=''
      continue
    fi
    if [[ -n $_forker_prefix && $_forker_nargs -ge 1 ]]; then
      _forker_nargs=$(( _forker_nargs + 1 ))
      continue
    fi
    case "$word" in
      --storage-root=*) _forker_root=${word#*=} ;;
      --*=*) ;;
      -?*)
        case " $_forker_valued " in *" $word "*) _forker_skip=$word ;; esac ;;
      *)
        if (( _forker_nargs == 0 )) && [[ " $_forker_subs " == *" $word "* ]]; then
          cmdpath=${cmdpath:+$cmdpath }$word
          _forker_spec "$cmdpath"
        else
          _forker_nargs=$(( _forker_nargs + 1 ))
        fi ;;
    esac
  done
}

# _forker_argkind N: sets _forker_kind to what positional argument N (from 0) of the current
# command is: container, image, - (anything) or none.
_forker_argkind() {
  [[ -n ${ZSH_VERSION-} ]] && setopt localoptions ksharrays shwordsplit
  local -a kinds
  kinds=($_forker_args)
  local n=${#kinds[@]} k
  if (( n == 0 )); then
    k=-
  elif (( $1 < n )); then
    k=${kinds[$1]}
  else
    k=${kinds[n - 1]}
    [[ $k == *... ]] || k=none
  fi
  _forker_kind=${k%...}
}
)sh";

std::string bash_script(const std::vector<CommandSpec>& specs) {
  std::string s =
      "# bash completion for forker, made by `forker completion bash`.\n"
      "# Load it with: source <(forker completion bash)\n"
      "# or for every shell: forker completion bash > /etc/bash_completion.d/forker\n\n";
  s += spec_function(specs, false);
  s += kQueryFunction;
  s += kScanFunction;
  s += R"sh(
_forker() {
  local cur=${COMP_WORDS[COMP_CWORD]}
  COMPREPLY=()
  _forker_scan "$COMP_CWORD" "${COMP_WORDS[@]}"
  # An option's value, or the command a container runs: files (complete -o default).
  [[ -n $_forker_skip ]] && return
  [[ -n $_forker_prefix && $_forker_nargs -ge 1 ]] && return
  compopt +o default 2>/dev/null
  if [[ $cur == -* ]]; then
    COMPREPLY=($(compgen -W "$_forker_flags" -- "$cur"))
    return
  fi
  if (( _forker_nargs == 0 )) && [[ -n $_forker_subs ]]; then
    COMPREPLY=($(compgen -W "$_forker_subs" -- "$cur"))
    return
  fi
  _forker_argkind "$_forker_nargs"
  case "$_forker_kind" in
    container|image)
      local IFS=$'\n'
      COMPREPLY=($(compgen -W "$(_forker_query "$_forker_kind" "${COMP_WORDS[0]}" \
        "$_forker_root")" -- "$cur")) ;;
    -) compopt -o default 2>/dev/null ;;
  esac
}
complete -o default -F _forker forker
)sh";
  return s;
}

std::string zsh_script(const std::vector<CommandSpec>& specs) {
  std::string s =
      "#compdef forker\n"
      "# zsh completion for forker, made by `forker completion zsh`.\n"
      "# Load it with: source <(forker completion zsh) (after compinit)\n"
      "# or save it as _forker in a directory of $fpath.\n\n";
  s += spec_function(specs, true);
  s += kQueryFunction;
  s += kScanFunction;
  s += R"sh(
_forker() {
  local cur=${words[CURRENT]}
  local -a found
  _forker_scan $(( CURRENT - 1 )) "${words[@]}"
  if [[ -n $_forker_skip ]] || [[ -n $_forker_prefix && $_forker_nargs -ge 1 ]]; then
    _files
    return
  fi
  if [[ $cur == -* ]]; then
    compadd -- ${=_forker_flags}
    return
  fi
  if (( _forker_nargs == 0 )) && (( ${#_forker_subdesc} )); then
    _describe -t commands 'forker command' _forker_subdesc
    return
  fi
  _forker_argkind "$_forker_nargs"
  case "$_forker_kind" in
    container|image)
      found=(${(f)"$(_forker_query "$_forker_kind" "${words[1]}" "$_forker_root")"})
      compadd -- $found ;;
    -) _files ;;
  esac
}

if [[ "${funcstack[1]}" == _forker ]]; then
  _forker "$@"
else
  compdef _forker forker
fi
)sh";
  return s;
}

}  // namespace

void register_completion_commands(CLI::App& app, Globals&, Actions& actions) {
  CLI::App* completion = app.add_subcommand("completion", "Print a shell completion script");
  completion->require_subcommand(1);
  for (const char* shell : {"bash", "zsh"}) {
    CLI::App* c =
        completion->add_subcommand(shell, std::string("completion for ") + shell +
                                              ": source <(forker completion " + shell + ")");
    bool zsh = std::string_view(shell) == "zsh";
    actions.add(c, [&app, zsh] {
      std::vector<CommandSpec> specs;
      walk(&app, "", specs);
      std::string script = zsh ? zsh_script(specs) : bash_script(specs);
      std::fputs(script.c_str(), stdout);
      return 0;
    });
  }
}

}  // namespace forker::cli
