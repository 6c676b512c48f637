#include "args.h"

#include <charconv>
#include <cstdio>

#include "command.h"

namespace chex::cli {

Args::Args(const std::vector<std::string>& args, const std::vector<OptionSpec>& options, const std::string& command)
    : command_(command) {
  auto find = [&](const std::string& name, char short_name) -> const OptionSpec* {
    for (const auto& o : options)
      if ((!name.empty() && o.name == name) || (short_name && o.short_name == short_name)) return &o;
    return nullptr;
  };
  bool options_ended = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (options_ended || a.size() < 2 || a[0] != '-') {
      positional_.push_back(a);
      continue;
    }
    if (a == "--") {
      options_ended = true;
      continue;
    }
    std::string name = a.substr(a[1] == '-' ? 2 : 1);
    std::optional<std::string> inline_value;
    if (const size_t eq = name.find('='); a[1] == '-' && eq != std::string::npos) {
      inline_value = name.substr(eq + 1);
      name.resize(eq);
    }
    const OptionSpec* spec = a[1] == '-' ? find(name, 0) : (name.size() == 1 ? find("", name[0]) : nullptr);
    if (!spec) throw UsageError("unknown option '" + a + "' for 'chex " + command_ + "'");
    if (!spec->takes_value) {
      if (inline_value) throw UsageError("option --" + spec->name + " takes no value");
      values_[spec->name] = "";
    } else if (inline_value) {
      values_[spec->name] = *inline_value;
    } else {
      if (i + 1 >= args.size()) throw UsageError("option --" + spec->name + " needs a value");
      values_[spec->name] = args[++i];
    }
  }
}

std::optional<std::string> Args::value(const std::string& name) const {
  const auto it = values_.find(name);
  return it == values_.end() ? std::nullopt : std::optional(it->second);
}

std::string Args::required(const std::string& name) const {
  const auto v = value(name);
  if (!v || v->empty()) throw UsageError("'chex " + command_ + "' needs --" + name);
  return *v;
}

int64_t Args::integer(const std::string& name, int64_t fallback, int64_t min, int64_t max) const {
  const auto v = value(name);
  if (!v) return fallback;
  int64_t n = 0;
  const auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
  if (ec != std::errc() || end != v->data() + v->size() || n < min || n > max)
    throw UsageError("--" + name + " must be an integer from " + std::to_string(min) + " to " + std::to_string(max) +
                     ", not '" + *v + "'");
  return n;
}

bool Args::help(const char* usage) const {
  if (!has("help")) return false;
  std::fputs(usage, stdout);
  // main() takes --verbose out for every command, so it is documented here once.
  std::fputs("\n--verbose (or CHEX_DEBUG=1 in the environment): on an error, also print the failed check and\n"
             "its source line, for a bug report.\n",
             stdout);
  return true;
}

}  // namespace chex::cli

namespace chex::cli {

std::vector<std::string> take_list_option(std::vector<std::string>& args, const std::string& name) {
  std::vector<std::string> rest, values;
  bool taking = false, given = false;
  for (const std::string& a : args) {
    if (a == "--" + name) {
      taking = given = true;
    } else if (taking && a.rfind("-", 0) != 0) {
      values.push_back(a);
    } else {
      taking = false;
      rest.push_back(a);
    }
  }
  if (given && values.empty()) throw UsageError("--" + name + " needs at least one file");
  args = std::move(rest);
  return values;
}

}  // namespace chex::cli
