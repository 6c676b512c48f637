#include "kernels/emu/block_runner.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <iomanip>
#include <map>
#include <memory>
#include <sstream>
#include <string_view>

#include "kernels/emu/emu_error.h"

namespace chex::emu::detail {

namespace {

constexpr unsigned warp_size = 32;
constexpr std::uint64_t poison_bits = ~std::uint64_t{0};  // NaN as float or double, -1 as int

// An error found by the emulator's own checks; its message already names kernel, block, thread.
class KernelFault : public Error {
 public:
  using Error::Error;
};

// Thrown into the suspended threads of a failed block so that their stacks unwind cleanly.
struct Cancelled {};

using ::chex::detail::concat;

std::string format(uint3 v) { return concat("(", v.x, ",", v.y, ",", v.z, ")"); }

std::string format(const std::source_location& where) {
  std::string_view file = where.file_name();
  if (const auto slash = file.find_last_of('/'); slash != std::string_view::npos) file.remove_prefix(slash + 1);
  return concat(file, ":", where.line());
}

std::string hex(unsigned mask) {
  std::ostringstream out;
  out << "0x" << std::hex << std::setw(8) << std::setfill('0') << mask;
  return out.str();
}

bool same_site(const std::source_location& a, const std::source_location& b) {
  return a.line() == b.line() && a.column() == b.column() &&
         (a.file_name() == b.file_name() || std::strcmp(a.file_name(), b.file_name()) == 0);
}

const char* name(BarrierOp op) {
  switch (op) {
    case BarrierOp::sync: return "__syncthreads";
    case BarrierOp::count: return "__syncthreads_count";
    case BarrierOp::all: return "__syncthreads_and";
    case BarrierOp::any: return "__syncthreads_or";
  }
  return "?";
}

const char* name(WarpOp op) {
  switch (op) {
    case WarpOp::sync: return "__syncwarp";
    case WarpOp::shfl: return "__shfl_sync";
    case WarpOp::shfl_up: return "__shfl_up_sync";
    case WarpOp::shfl_down: return "__shfl_down_sync";
    case WarpOp::shfl_xor: return "__shfl_xor_sync";
    case WarpOp::ballot: return "__ballot_sync";
    case WarpOp::any: return "__any_sync";
    case WarpOp::all: return "__all_sync";
  }
  return "?";
}

bool is_shuffle(WarpOp op) {
  return op == WarpOp::shfl || op == WarpOp::shfl_up || op == WarpOp::shfl_down || op == WarpOp::shfl_xor;
}

// "16-31" or "3, 5": lanes set in `mask`.
std::string lanes_list(unsigned mask) {
  std::string out;
  for (unsigned lane = 0; lane < warp_size;) {
    if (!(mask >> lane & 1u)) {
      ++lane;
      continue;
    }
    unsigned last = lane;
    while (last + 1 < warp_size && (mask >> (last + 1) & 1u)) ++last;
    out += concat(out.empty() ? "" : ", ", lane);
    if (last > lane) out += concat("-", last);
    lane = last + 1;
  }
  return out;
}

// The lane a shuffle reads, by CUDA's rules: lanes form segments of `width`; a read that would
// leave the caller's segment (up or down past its edge, xor into a later segment) returns the
// caller's own value.
unsigned shuffle_source(WarpOp op, unsigned lane, int arg, unsigned width) {
  const unsigned base = lane & ~(width - 1);
  const auto delta = static_cast<std::uint64_t>(static_cast<unsigned>(arg));
  switch (op) {
    case WarpOp::shfl: return base + (static_cast<unsigned>(arg) & (width - 1));
    case WarpOp::shfl_up: return lane - base >= delta ? lane - static_cast<unsigned>(delta) : lane;
    case WarpOp::shfl_down: return lane - base + delta < width ? lane + static_cast<unsigned>(delta) : lane;
    case WarpOp::shfl_xor: {
      const std::uint64_t source = lane ^ delta;
      return source < warp_size && (source & ~std::uint64_t{width - 1}) <= base ? static_cast<unsigned>(source) : lane;
    }
    default: return lane;
  }
}

}  // namespace

BlockRunner::BlockRunner(const LaunchSpec& spec, KernelBody body, State& state)
    : spec_(spec), body_(body), state_(state) {
  const unsigned n = spec.block.x * spec.block.y * spec.block.z;
  threads_.resize(n);
  for (unsigned rank = 0; rank < n; ++rank) {
    threads_[rank].rank = rank;
    threads_[rank].idx = uint3{rank % spec.block.x, rank / spec.block.x % spec.block.y,
                               rank / (spec.block.x * spec.block.y)};
  }
  if (state.stacks_bytes != state.stack_bytes) {
    state.stacks.clear();
    state.stacks_bytes = state.stack_bytes;
  }
  while (state.stacks.size() < n) state.stacks.push_back(std::make_unique<FiberStack>(state.stack_bytes));
  round_.reserve(n);
}

std::string BlockRunner::context(const EmuThread* thread) const {
  std::string out = concat("chex emulator: kernel '", spec_.name, "', block ", format(block_idx_));
  if (thread) out += concat(", thread ", format(thread->idx));
  return out;
}

void BlockRunner::fail_here(const std::string& message) const {
  throw KernelFault(concat(context(current_), ": ", message));
}

void BlockRunner::record_error(std::string message) {
  if (error_.empty()) error_ = std::move(message);
}

unsigned BlockRunner::lanes_in_warp(unsigned warp) const {
  return std::min<unsigned>(warp_size, static_cast<unsigned>(threads_.size()) - warp * warp_size);
}

void BlockRunner::run(uint3 block_idx) {
  block_idx_ = block_idx;
  builtins.block_idx = block_idx;
  exited_ = 0;
  at_barrier_ = 0;
  cancelling_ = false;
  error_.clear();
  for (EmuThread& thread : threads_) {
    thread.status = EmuThread::Status::runnable;
    thread.started = false;
    prepare_fiber(thread.context, *state_.stacks[thread.rank], &BlockRunner::thread_main, &thread);
  }
  // Rounds: resume, in schedule order, every thread runnable at the start of the round.
  while (exited_ < threads_.size() && error_.empty()) {
    round_.clear();
    for (const EmuThread& thread : threads_)
      if (thread.status == EmuThread::Status::runnable) round_.push_back(thread.rank);
    if (round_.empty()) {
      record_error(describe_deadlock());
      break;
    }
    order_round();
    for (const unsigned rank : round_) {
      if (!error_.empty()) break;
      resume(threads_[rank]);
    }
  }
  if (!error_.empty()) {
    cancel_all();
    throw Error(error_);
  }
}

void BlockRunner::order_round() {
  switch (state_.schedule.order) {
    case Schedule::forward: break;
    case Schedule::reverse: std::reverse(round_.begin(), round_.end()); break;
    case Schedule::random: std::shuffle(round_.begin(), round_.end(), state_.rng); break;
  }
}

void BlockRunner::resume(EmuThread& thread) {
  current_ = &thread;
  builtins.thread_idx = thread.idx;
  thread.started = true;
  switch_context(scheduler_, thread.context);
  current_ = nullptr;
}

void BlockRunner::yield(EmuThread& thread) {
  switch_context(thread.context, scheduler_);
  if (cancelling_) throw Cancelled{};
}

void BlockRunner::thread_main(void* self) {
  auto& thread = *static_cast<EmuThread*>(self);
  BlockRunner& block = *state().block;
  fiber_started(block.scheduler_);
  try {
    block.body_.invoke(block.body_.closure);
  } catch (const Cancelled&) {
  } catch (const KernelFault& fault) {
    block.record_error(fault.what());
  } catch (const std::exception& error) {
    block.record_error(concat(block.context(&thread), ": ", error.what()));
  } catch (...) {
    block.record_error(concat(block.context(&thread), ": threw an exception that is not a std::exception"));
  }
  block.on_exit(thread);
  exit_fiber(thread.context, block.scheduler_);
}

void BlockRunner::cancel_all() {
  cancelling_ = true;
  for (EmuThread& thread : threads_)
    if (thread.started && thread.status != EmuThread::Status::exited) resume(thread);
}

void BlockRunner::on_exit(EmuThread& thread) {
  thread.status = EmuThread::Status::exited;
  ++exited_;
  if (cancelling_) return;
  if (at_barrier_ > 0) {
    const auto waiter = std::find_if(threads_.begin(), threads_.end(), [](const EmuThread& t) {
      return t.status == EmuThread::Status::at_barrier;
    });
    record_error(concat(context(&thread), ": exited while ", at_barrier_, " thread(s) wait at ",
                        name(waiter->barrier_op), " at ", format(waiter->where),
                        ": divergent barrier (every thread of the block must reach each __syncthreads)"));
    return;
  }
  const unsigned lane = thread.rank % warp_size;
  const unsigned base = thread.rank - lane;
  for (unsigned other = 0; other < lanes_in_warp(thread.rank / warp_size); ++other) {
    const EmuThread& waiter = threads_[base + other];
    if (waiter.status == EmuThread::Status::at_warp_op && (waiter.mask >> lane & 1u)) {
      record_error(concat(context(&thread), ": lane ", lane, " exited while lane ", other, " waits for it at ",
                          name(waiter.warp_op), " at ", format(waiter.where), " with mask ", hex(waiter.mask)));
      return;
    }
  }
}

int BlockRunner::barrier(BarrierOp op, int predicate, std::source_location where) {
  EmuThread& thread = *current_;
  if (exited_ > 0) {
    const auto gone = std::find_if(threads_.begin(), threads_.end(), [](const EmuThread& t) {
      return t.status == EmuThread::Status::exited;
    });
    fail_here(concat(name(op), " at ", format(where), " is divergent: thread ", format(gone->idx),
                     " has already exited (every thread of the block must reach each __syncthreads)"));
  }
  thread.status = EmuThread::Status::at_barrier;
  thread.where = where;
  thread.barrier_op = op;
  thread.predicate = predicate;
  if (++at_barrier_ == threads_.size()) release_barrier();
  yield(thread);
  return static_cast<int>(thread.result);
}

void BlockRunner::release_barrier() {
  const EmuThread& first = threads_.front();
  const bool same = std::all_of(threads_.begin(), threads_.end(), [&](const EmuThread& t) {
    return t.barrier_op == first.barrier_op && same_site(t.where, first.where);
  });
  if (!same) {
    std::map<std::string, unsigned> sites;
    for (const EmuThread& t : threads_) ++sites[concat(name(t.barrier_op), " at ", format(t.where))];
    std::string list;
    for (const auto& [site, count] : sites) list += concat(list.empty() ? "" : ", ", count, " at ", site);
    fail_here(concat("divergent barrier: the threads of the block wait at different barriers: ", list));
  }
  int count = 0;
  for (const EmuThread& t : threads_) count += t.predicate != 0;
  const auto n = static_cast<int>(threads_.size());
  int result = 0;
  switch (first.barrier_op) {
    case BarrierOp::sync: break;
    case BarrierOp::count: result = count; break;
    case BarrierOp::all: result = count == n; break;
    case BarrierOp::any: result = count > 0; break;
  }
  for (EmuThread& t : threads_) {
    t.result = static_cast<std::uint64_t>(result);
    t.status = EmuThread::Status::runnable;
  }
  at_barrier_ = 0;
}

std::uint64_t BlockRunner::warp(WarpOp op, unsigned mask, std::uint64_t value, int arg, int width,
                                std::source_location where) {
  EmuThread& thread = *current_;
  const unsigned warp = thread.rank / warp_size;
  const unsigned lane = thread.rank % warp_size;
  const unsigned base = thread.rank - lane;
  const unsigned lanes = lanes_in_warp(warp);
  const unsigned present = lanes == warp_size ? ~0u : (1u << lanes) - 1;
  const std::string what = concat(name(op), " at ", format(where), " (warp ", warp, ", lane ", lane, ", mask ", hex(mask), ")");

  if (!(mask >> lane & 1u)) fail_here(concat(what, ": the mask does not include the calling lane"));
  if (mask & ~present)
    fail_here(concat(what, ": the mask names lanes ", lanes_list(mask & ~present), ", which are not in the block (warp ",
                     warp, " has ", lanes, " lane(s))"));
  if (is_shuffle(op) && (width < 1 || width > static_cast<int>(warp_size) || !std::has_single_bit(static_cast<unsigned>(width))))
    fail_here(concat(what, ": width must be a power of 2 from 1 to 32, not ", width));
  for (unsigned other = 0; other < lanes; ++other) {
    if (!(mask >> other & 1u)) continue;
    const EmuThread& peer = threads_[base + other];
    if (peer.status == EmuThread::Status::exited)
      fail_here(concat(what, ": the mask names lane ", other, " (thread ", format(peer.idx), "), which has exited"));
    if (peer.status == EmuThread::Status::at_warp_op && peer.mask != mask)
      fail_here(concat(what, ": lane ", other, " waits at ", name(peer.warp_op), " at ", format(peer.where),
                       " with mask ", hex(peer.mask), "; the lanes of a warp operation must name the same mask"));
  }

  thread.status = EmuThread::Status::at_warp_op;
  thread.where = where;
  thread.warp_op = op;
  thread.mask = mask;
  thread.value = value;
  thread.arg = arg;
  thread.width = width;
  try_complete_warp_op(warp, mask);
  yield(thread);
  return thread.result;
}

bool BlockRunner::try_complete_warp_op(unsigned warp, unsigned mask) {
  const unsigned base = warp * warp_size;
  const EmuThread& self = *current_;
  unsigned ballot = 0;
  for (unsigned lane = 0; lane < warp_size; ++lane) {
    if (!(mask >> lane & 1u)) continue;
    const EmuThread& peer = threads_[base + lane];
    if (peer.status != EmuThread::Status::at_warp_op) return false;
    if (peer.warp_op != self.warp_op)
      fail_here(concat("the lanes of warp ", warp, " meet at different operations: lane ", lane, " at ",
                       name(peer.warp_op), " at ", format(peer.where), ", lane ", self.rank % warp_size, " at ",
                       name(self.warp_op), " at ", format(self.where)));
    if (peer.value != 0) ballot |= 1u << lane;
  }
  for (unsigned lane = 0; lane < warp_size; ++lane) {
    if (!(mask >> lane & 1u)) continue;
    EmuThread& peer = threads_[base + lane];
    switch (peer.warp_op) {
      case WarpOp::sync: peer.result = 0; break;
      case WarpOp::ballot: peer.result = ballot; break;
      case WarpOp::any: peer.result = ballot != 0; break;
      case WarpOp::all: peer.result = ballot == mask; break;
      default: {
        // A lane outside the mask has no value to give: CUDA leaves the result undefined.
        const unsigned source = shuffle_source(peer.warp_op, lane, peer.arg, static_cast<unsigned>(peer.width));
        peer.result = (mask >> source & 1u) ? threads_[base + source].value : poison_bits;
      }
    }
  }
  for (unsigned lane = 0; lane < warp_size; ++lane)
    if (mask >> lane & 1u) threads_[base + lane].status = EmuThread::Status::runnable;
  return true;
}

unsigned BlockRunner::active_mask() const {
  const unsigned warp = current_->rank / warp_size;
  unsigned mask = 0;
  for (unsigned lane = 0; lane < lanes_in_warp(warp); ++lane)
    if (threads_[warp * warp_size + lane].status != EmuThread::Status::exited) mask |= 1u << lane;
  return mask;
}

std::string BlockRunner::describe_deadlock() const {
  std::map<std::string, unsigned> waits;
  for (const EmuThread& t : threads_) {
    if (t.status == EmuThread::Status::at_barrier)
      ++waits[concat(name(t.barrier_op), " at ", format(t.where))];
    else if (t.status == EmuThread::Status::at_warp_op)
      ++waits[concat(name(t.warp_op), " at ", format(t.where), " in warp ", t.rank / warp_size, " with mask ", hex(t.mask))];
  }
  std::string out = concat(context(nullptr), ": deadlock, no thread can continue: ");
  bool first = true;
  for (const auto& [site, count] : waits) {
    out += concat(first ? "" : "; ", count, " thread(s) wait at ", site);
    first = false;
  }
  if (exited_ > 0) out += concat("; ", exited_, " thread(s) have exited");
  return out;
}

}  // namespace chex::emu::detail
