#include "formats/unicode_regex.h"

#include <algorithm>
#include <memory>

#include "core/error.h"
#include "formats/unicode.h"

namespace sq {

namespace {

struct Node {
  enum Kind { kChar, kClass, kAny, kConcat, kAlt, kRepeat, kLook, kBegin, kEnd } kind;
  uint32_t cp = 0;
  bool fold = false;
  int cls = 0;
  int min = 0, max = 0;  // kRepeat; max -1 = unbounded
  bool greedy = true;
  bool negate = false;   // kLook
  std::vector<std::unique_ptr<Node>> kids;
};
using NodePtr = std::unique_ptr<Node>;

NodePtr Make(Node::Kind k) {
  auto n = std::make_unique<Node>();
  n->kind = k;
  return n;
}

bool Nullable(const Node& n) {
  switch (n.kind) {
    case Node::kChar: case Node::kClass: case Node::kAny: return false;
    case Node::kConcat:
      for (auto& k : n.kids) if (!Nullable(*k)) return false;
      return true;
    case Node::kAlt:
      for (auto& k : n.kids) if (Nullable(*k)) return true;
      return false;
    case Node::kRepeat: return n.min == 0 || Nullable(*n.kids[0]);
    default: return true;
  }
}

}  // namespace

// Recursive-descent parser from pattern code points to a Node tree, then a code emitter.
class RegexCompiler {
 public:
  explicit RegexCompiler(UnicodeRegex& re) : re_(re) {
    unicode::CheckUtf8(re.pattern_, "regex " + re.pattern_);
    p_ = unicode::ToCodepoints(re.pattern_);
  }

  void Compile() {
    NodePtr root = ParseAlt(false);
    if (i_ != p_.size()) Fail("unbalanced ')'");
    Emit(*root);
    re_.prog_.push_back({UnicodeRegex::Inst::kMatch});
  }

 private:
  using Inst = UnicodeRegex::Inst;
  using Item = UnicodeRegex::ClassItem;

  [[noreturn]] void Fail(const std::string& why) {
    throw Error("tokenizer regex \"" + re_.pattern_ + "\": " + why + " (at code point " +
                std::to_string(i_) + ")");
  }
  bool More() const { return i_ < p_.size(); }
  uint32_t Peek() const { return p_[i_]; }
  bool Eat(uint32_t c) {
    if (More() && Peek() == c) { ++i_; return true; }
    return false;
  }

  NodePtr ParseAlt(bool fold) {
    auto alt = Make(Node::kAlt);
    alt->kids.push_back(ParseConcat(fold));
    while (Eat('|')) alt->kids.push_back(ParseConcat(fold));
    if (alt->kids.size() == 1) return std::move(alt->kids[0]);
    return alt;
  }

  NodePtr ParseConcat(bool fold) {
    auto cat = Make(Node::kConcat);
    while (More() && Peek() != '|' && Peek() != ')') {
      if (Peek() == '(' && i_ + 3 < p_.size() && p_[i_ + 1] == '?' && p_[i_ + 2] == 'i' &&
          p_[i_ + 3] == ')') {
        i_ += 4;  // (?i): case-insensitive for the rest of this group
        fold = true;
        continue;
      }
      NodePtr atom = ParseAtom(fold);
      cat->kids.push_back(ParseQuantifiers(std::move(atom)));
    }
    return cat;
  }

  int ParseInt() {
    if (!More() || Peek() < '0' || Peek() > '9') Fail("expected a number in {m,n}");
    int v = 0;
    while (More() && Peek() >= '0' && Peek() <= '9') {
      v = v * 10 + static_cast<int>(Peek() - '0'), ++i_;
      if (v > kMaxRegexRepeat) Fail("repeat count above " + std::to_string(kMaxRegexRepeat));
    }
    return v;
  }

  NodePtr ParseQuantifiers(NodePtr atom) {
    for (int stacked = 0; More(); ++stacked) {
      int min, max;
      if (Eat('?')) { min = 0; max = 1; }
      else if (Eat('*')) { min = 0; max = -1; }
      else if (Eat('+')) { min = 1; max = -1; }
      else if (Peek() == '{' && i_ + 1 < p_.size() && p_[i_ + 1] >= '0' && p_[i_ + 1] <= '9') {
        ++i_;
        min = ParseInt();
        max = min;
        if (Eat(',')) max = (More() && Peek() == '}') ? -1 : ParseInt();
        if (!Eat('}')) Fail("expected '}'");
        if (max != -1 && max < min) Fail("{m,n} with n < m");
      } else {
        break;
      }
      if (stacked == kMaxRegexDepth) {
        Fail("more than " + std::to_string(kMaxRegexDepth) + " quantifiers stacked on one atom");
      }
      if (atom->kind == Node::kLook || atom->kind == Node::kBegin || atom->kind == Node::kEnd) {
        Fail("quantifier after an assertion");
      }
      auto rep = Make(Node::kRepeat);
      rep->min = min;
      rep->max = max;
      if (Eat('?')) rep->greedy = false;
      else if (More() && Peek() == '+') Fail("possessive quantifiers are not supported");
      if (max == -1 && Nullable(*atom)) Fail("an unbounded repeat of an empty-matching group");
      rep->kids.push_back(std::move(atom));
      atom = std::move(rep);
    }
    return atom;
  }

  NodePtr ParseAtom(bool fold) {
    uint32_t c = p_[i_++];
    switch (c) {
      case '(': return ParseGroup(fold);
      case '[': return ParseClass(fold);
      case '.': return Make(Node::kAny);
      case '^': return Make(Node::kBegin);
      case '$': return Make(Node::kEnd);
      case '*': case '+': case '?': Fail("quantifier without an operand");
      case '\\': return ParseEscapeAtom(fold);
      default: {
        auto n = Make(Node::kChar);
        n->cp = c;
        n->fold = fold;
        return n;
      }
    }
  }

  NodePtr ParseGroup(bool fold) {
    if (++depth_ > kMaxRegexDepth) Fail("groups nested deeper than " + std::to_string(kMaxRegexDepth));
    NodePtr inner;
    if (Eat('?')) {
      if (Eat(':')) {
        inner = ParseAlt(fold);
      } else if (Eat('i')) {
        if (!Eat(':')) Fail("only the (?i:...) and (?i) flag groups are supported");
        inner = ParseAlt(true);
      } else if (More() && (Peek() == '=' || Peek() == '!')) {
        auto look = Make(Node::kLook);
        look->negate = p_[i_++] == '!';
        look->kids.push_back(ParseAlt(fold));
        inner = std::move(look);
      } else {
        Fail("unsupported group syntax (lookbehind, named groups and flags other than i)");
      }
    } else {
      inner = ParseAlt(fold);
    }
    if (!Eat(')')) Fail("missing ')'");
    --depth_;
    return inner;
  }

  // Reads an escape (after '\') that stands for a class item; false if it is a single char.
  bool ParseClassEscape(Item& item, uint32_t& single) {
    if (!More()) Fail("trailing backslash");
    uint32_t c = p_[i_++];
    switch (c) {
      case 's': case 'S': item.kind = Item::kSpace; item.negated = c == 'S'; return true;
      case 'd': case 'D': item.kind = Item::kDigit; item.negated = c == 'D'; return true;
      case 'w': case 'W': item.kind = Item::kWord; item.negated = c == 'W'; return true;
      case 'p': case 'P': {
        item.kind = Item::kCategory;
        item.negated = c == 'P';
        std::string name;
        if (Eat('{')) {
          if (Eat('^')) item.negated = !item.negated;
          while (More() && Peek() != '}') name += static_cast<char>(p_[i_++]);
          if (!Eat('}')) Fail("missing '}' after \\p{");
        } else {
          if (!More()) Fail("\\p without a name");
          name = static_cast<char>(p_[i_++]);
        }
        if (name == "Letter") name = "L";
        if (name == "Number") name = "N";
        bool known = false;
        unicode::CategoryMatches(name, 'a', &known);
        if (!known) Fail("unknown Unicode property \\p{" + name + "}");
        item.category = name;
        return true;
      }
      case 'r': single = '\r'; return false;
      case 'n': single = '\n'; return false;
      case 't': single = '\t'; return false;
      case 'f': single = '\f'; return false;
      case 'v': single = '\v'; return false;
      case 'a': single = 0x07; return false;
      case 'e': single = 0x1B; return false;
      case '0': single = 0; return false;
      case 'x': case 'u': {
        uint32_t v = 0;
        int digits = 0;
        bool braced = Eat('{');
        int max_digits = braced ? 8 : (c == 'x' ? 2 : 4);
        while (More() && digits < max_digits && isxdigit(static_cast<int>(Peek() & 0x7F)) &&
               Peek() < 0x80) {
          uint32_t d = Peek();
          v = v * 16 + (d <= '9' ? d - '0' : (d | 0x20) - 'a' + 10);
          ++i_, ++digits;
        }
        if (braced && !Eat('}')) Fail("missing '}' in \\x{...}");
        if (digits == 0) Fail("bad hex escape");
        single = v;
        return false;
      }
      default:
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '1' && c <= '9')) {
          Fail(std::string("unsupported escape \\") + static_cast<char>(c));
        }
        single = c;
        return false;
    }
  }

  NodePtr ParseEscapeAtom(bool fold) {
    if (More() && (Peek() == 'A' || Peek() == 'z')) {
      return Make(p_[i_++] == 'A' ? Node::kBegin : Node::kEnd);
    }
    Item item{};
    uint32_t single = 0;
    if (ParseClassEscape(item, single)) {
      UnicodeRegex::CharClass cls;
      cls.items.push_back(item);
      cls.fold = fold;
      auto n = Make(Node::kClass);
      n->cls = static_cast<int>(re_.classes_.size());
      re_.classes_.push_back(std::move(cls));
      return n;
    }
    auto n = Make(Node::kChar);
    n->cp = single;
    n->fold = fold;
    return n;
  }

  NodePtr ParseClass(bool fold) {
    UnicodeRegex::CharClass cls;
    cls.fold = fold;
    cls.negated = Eat('^');
    bool first = true;
    while (true) {
      if (!More()) Fail("missing ']'");
      uint32_t c = p_[i_];
      if (c == ']' && !first) { ++i_; break; }
      first = false;
      if (c == '[') Fail("nested classes and set operations are not supported");
      ++i_;
      Item item{};
      uint32_t lo = c;
      if (c == '\\') {
        if (ParseClassEscape(item, lo)) { cls.items.push_back(item); continue; }
      }
      uint32_t hi = lo;
      if (More() && Peek() == '-' && i_ + 1 < p_.size() && p_[i_ + 1] != ']') {
        ++i_;
        uint32_t h = p_[i_++];
        if (h == '\\') {
          Item unused{};
          if (ParseClassEscape(unused, h)) Fail("a class escape cannot end a range");
        }
        hi = h;
        if (hi < lo) Fail("range out of order");
      }
      item.kind = Item::kRange;
      item.lo = lo;
      item.hi = hi;
      cls.items.push_back(item);
    }
    auto n = Make(Node::kClass);
    n->cls = static_cast<int>(re_.classes_.size());
    re_.classes_.push_back(std::move(cls));
    return n;
  }

  int Pc() const { return static_cast<int>(re_.prog_.size()); }
  int Push(Inst in) {
    if (re_.prog_.size() >= kMaxRegexProgram) {
      Fail("compiles to more than " + std::to_string(kMaxRegexProgram) +
           " instructions (nested repeats)");
    }
    re_.prog_.push_back(in);
    return Pc() - 1;
  }

  void Emit(const Node& n) {
    auto& prog = re_.prog_;
    switch (n.kind) {
      case Node::kChar: Push({Inst::kChar, n.cp, n.fold}); break;
      case Node::kClass: { Inst in{Inst::kClass}; in.x = n.cls; Push(in); break; }
      case Node::kAny: Push({Inst::kAny}); break;
      case Node::kBegin: Push({Inst::kBegin}); break;
      case Node::kEnd: Push({Inst::kEnd}); break;
      case Node::kConcat: for (auto& k : n.kids) Emit(*k); break;
      case Node::kAlt: {
        std::vector<int> jumps;
        for (size_t k = 0; k < n.kids.size(); ++k) {
          int split = -1;
          if (k + 1 < n.kids.size()) split = Push({Inst::kSplit});
          if (split >= 0) prog[split].x = Pc();
          Emit(*n.kids[k]);
          if (k + 1 < n.kids.size()) {
            jumps.push_back(Push({Inst::kJmp}));
            prog[split].y = Pc();
          }
        }
        for (int j : jumps) prog[j].x = Pc();
        break;
      }
      case Node::kRepeat: EmitRepeat(n); break;
      case Node::kLook: {
        Inst look{Inst::kLook};
        look.y = n.negate;
        int at = Push(look);
        int jmp = Push({Inst::kJmp});
        prog[at].x = Pc();
        Emit(*n.kids[0]);
        Push({Inst::kMatch});
        prog[jmp].x = Pc();
        break;
      }
    }
  }

  // Split whose preferred branch is the body (greedy) or the exit (lazy).
  int PushSplit(bool greedy) { return Push({Inst::kSplit, 0, greedy}); }
  void Patch(int split, int body, int exit) {
    bool greedy = re_.prog_[split].fold;
    re_.prog_[split].x = greedy ? body : exit;
    re_.prog_[split].y = greedy ? exit : body;
  }

  void EmitRepeat(const Node& n) {
    const Node& body = *n.kids[0];
    for (int k = 0; k < n.min; ++k) Emit(body);
    if (n.max == -1) {
      int split = PushSplit(n.greedy);
      Emit(body);
      Inst back{Inst::kJmp};
      back.x = split;
      Push(back);
      Patch(split, split + 1, Pc());
      return;
    }
    std::vector<int> splits;
    for (int k = n.min; k < n.max; ++k) {
      int split = PushSplit(n.greedy);
      splits.push_back(split);
      Emit(body);
    }
    for (int s : splits) Patch(s, s + 1, Pc());
  }

  UnicodeRegex& re_;
  std::vector<uint32_t> p_;
  size_t i_ = 0;
  int depth_ = 0;  // open groups, bounded so recursion cannot overflow the stack
};

UnicodeRegex::UnicodeRegex(std::string_view pattern) : pattern_(pattern) {
  RegexCompiler(*this).Compile();
}

bool UnicodeRegex::ClassMatches(const CharClass& c, uint32_t cp) const {
  auto test = [&](uint32_t ch) {
    for (const ClassItem& it : c.items) {
      bool m = false;
      bool known;
      switch (it.kind) {
        case ClassItem::kRange: m = ch >= it.lo && ch <= it.hi; break;
        case ClassItem::kCategory:
          m = it.category == "L"   ? unicode::IsLetter(ch)
              : it.category == "N" ? unicode::IsNumber(ch)
                                   : unicode::CategoryMatches(it.category, ch, &known);
          break;
        case ClassItem::kSpace: m = unicode::IsWhiteSpace(ch); break;
        case ClassItem::kDigit: m = unicode::GetCategory(ch) == unicode::Category::kNd; break;
        case ClassItem::kWord: {
          auto cat = unicode::GetCategory(ch);
          m = unicode::IsLetter(ch) || cat == unicode::Category::kNd ||
              cat == unicode::Category::kPc || (cat >= unicode::Category::kMn &&
                                                cat <= unicode::Category::kMe);
          break;
        }
      }
      if (m != it.negated) return true;
    }
    return false;
  };
  bool in = test(cp);
  if (!in && c.fold) {
    uint32_t low = unicode::SimpleLower(cp);
    in = (low != cp && test(low)) || (cp >= 'a' && cp <= 'z' && test(cp - 32));
  }
  return in != c.negated;
}

bool UnicodeRegex::Run(int pc, const std::vector<uint32_t>& text, size_t pos, size_t* end,
                       uint64_t* budget) const {
  // One backtrack stack per thread, shared by nested lookahead runs above `base`.
  thread_local std::vector<std::pair<int, size_t>> stack;
  const size_t base = stack.size();
  const size_t n = text.size();
  while (true) {
    if ((*budget)-- == 0) {
      stack.resize(base);
      throw Error("tokenizer regex \"" + pattern_ + "\": matching " + std::to_string(text.size()) +
                  " code points took more than its step budget (catastrophic backtracking)");
    }
    const Inst& in = prog_[pc];
    bool ok = true;
    switch (in.op) {
      case Inst::kChar:
        ok = pos < n && (text[pos] == in.cp ||
                         (in.fold && unicode::SimpleLower(text[pos]) == unicode::SimpleLower(in.cp)));
        if (ok) ++pos, ++pc;
        break;
      case Inst::kClass:
        ok = pos < n && ClassMatches(classes_[in.x], text[pos]);
        if (ok) ++pos, ++pc;
        break;
      case Inst::kAny:
        ok = pos < n && text[pos] != '\n';
        if (ok) ++pos, ++pc;
        break;
      case Inst::kSplit:
        stack.emplace_back(in.y, pos);
        pc = in.x;
        break;
      case Inst::kJmp: pc = in.x; break;
      case Inst::kLook: {
        size_t unused;
        ok = Run(in.x, text, pos, &unused, budget) != static_cast<bool>(in.y);
        if (ok) ++pc;
        break;
      }
      case Inst::kBegin: ok = pos == 0; if (ok) ++pc; break;
      case Inst::kEnd: ok = pos == n; if (ok) ++pc; break;
      case Inst::kMatch:
        *end = pos;
        stack.resize(base);
        return true;
    }
    if (ok) continue;
    if (stack.size() == base) return false;
    pc = stack.back().first;
    pos = stack.back().second;
    stack.pop_back();
  }
}

uint64_t UnicodeRegex::StepBudget(size_t code_points) {
  return kRegexBaseSteps + kRegexStepsPerCodePoint * static_cast<uint64_t>(code_points);
}

long UnicodeRegex::MatchAt(const std::vector<uint32_t>& text, size_t pos) const {
  uint64_t budget = StepBudget(text.size() - std::min(pos, text.size()));
  return MatchAt(text, pos, &budget);
}

long UnicodeRegex::MatchAt(const std::vector<uint32_t>& text, size_t pos, uint64_t* budget) const {
  size_t end;
  return Run(0, text, pos, &end, budget) ? static_cast<long>(end) : -1;
}

std::vector<std::pair<size_t, size_t>> UnicodeRegex::FindAll(
    const std::vector<uint32_t>& text) const {
  std::vector<std::pair<size_t, size_t>> out;
  uint64_t budget = StepBudget(text.size());  // for the whole scan, so it stays linear
  size_t pos = 0;
  while (pos < text.size()) {
    long end = MatchAt(text, pos, &budget);
    if (end > static_cast<long>(pos)) {
      out.emplace_back(pos, static_cast<size_t>(end));
      pos = static_cast<size_t>(end);
    } else {
      ++pos;  // no match here, or an empty one (empty pieces are dropped anyway)
    }
  }
  return out;
}

}  // namespace sq
