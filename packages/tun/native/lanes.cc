// A device's lanes (docs/protocol.md §3.1 "Lanes"): one packet path per thread, each with its own TUN
// queue and tunnel session, so that a connection's packets never cross threads.
//
//   relay --lane k--> thread k writes the packet into TUN queue k --> the kernel handles it inline
//     - a SYN to a proxy port is queued on listener k of the port's SO_REUSEPORT group: the group's
//       classic BPF program picks the socket by the queue the SYN was written to (skb->queue_mapping,
//       which the TUN sets to queue + 1), so thread k's engine accepts it;
//   device's answer --> the TUN's steering program (TUNSETSTEERINGEBPF) picks the queue by the flow's
//       hash, the same symmetric hash the relay chose lane k by (protocol responder.ts flowLane), so
//       thread k reads it and sends it on lane k.
//
// Without the steering program the TUN would pick by its flow table, which learns a flow's queue only
// after the packet that created the flow was handled (so a SYN's SYN-ACK would leave by any queue) and
// holds at most 4,096 flows (fewer than a busy device opens in the table's few seconds of ageing).
//
//   AttachByQueue(fd)              attaches the group's program through one of its listening sockets
//                                  (the engine's frontListen with lanes, splice_relay.cc)
//   tunSteerByFlow(fd, lanes)      loads and attaches (or detaches: 0) the steering program on a TUN queue
#include <errno.h>
#include <linux/bpf.h>
#include <linux/filter.h>
#include <linux/if_tun.h>
#include <napi.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "errno_error.h"
#include "lanes.h"

namespace pp {
namespace {

// cBPF for SO_ATTACH_REUSEPORT_CBPF: A = queue_mapping - 1. A value at or above the group's size (no
// queue recorded: 0 - 1) makes the kernel pick by its hash, as without a program.
sock_filter kByQueue[] = {
    {BPF_LD | BPF_W | BPF_ABS, 0, 0, static_cast<uint32_t>(SKF_AD_OFF + SKF_AD_QUEUE)},
    {BPF_ALU | BPF_SUB | BPF_K, 0, 0, 1},
    {BPF_RET | BPF_A, 0, 0, 0},
};

bpf_insn Insn(uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm) {
  bpf_insn i{};
  i.code = code;
  i.dst_reg = dst;
  i.src_reg = src;
  i.off = off;
  i.imm = imm;
  return i;
}

// The steering program (BPF_PROG_TYPE_SOCKET_FILTER): flowLane(packet, lanes) of the IPv4 packet the
// device sends. The TUN takes the return value as a u16 modulo its queues, so the program returns the
// lane itself (< lanes). Legacy packet loads (LD_ABS/LD_IND, big-endian, ctx in r6) need no helper; a
// load past the packet's end ends the program with 0 (lane 0).
//   neither TCP nor UDP: 0; r7 = src ^ dst ^ proto; not a later fragment: r7 ^= sport ^ dport; mix; r7 % lanes
std::vector<bpf_insn> FlowLaneProgram(uint32_t lanes) {
  constexpr uint8_t LDW = BPF_LD | BPF_ABS | BPF_W, LDH = BPF_LD | BPF_ABS | BPF_H, LDB = BPF_LD | BPF_ABS | BPF_B;
  constexpr uint8_t LDIH = BPF_LD | BPF_IND | BPF_H;
  constexpr uint8_t MOV64 = BPF_ALU64 | BPF_MOV | BPF_X, MOV = BPF_ALU | BPF_MOV | BPF_X;
  constexpr uint8_t XOR = BPF_ALU | BPF_XOR | BPF_X, AND = BPF_ALU | BPF_AND | BPF_K, LSH = BPF_ALU | BPF_LSH | BPF_K;
  constexpr uint8_t RSH = BPF_ALU | BPF_RSH | BPF_K, MUL = BPF_ALU | BPF_MUL | BPF_K, MOD = BPF_ALU | BPF_MOD | BPF_K;
  constexpr uint8_t JNE = BPF_JMP | BPF_JNE | BPF_K, JEQ = BPF_JMP | BPF_JEQ | BPF_K;
  constexpr int32_t kMul = 0x45d9f3b;
  std::vector<bpf_insn> p = {
      Insn(MOV64, 6, 1, 0, 0),  //  0: r6 = ctx
      Insn(LDW, 0, 0, 0, 12),   //  1: r0 = src
      Insn(MOV64, 7, 0, 0, 0),  //  2: r7 = r0
      Insn(LDW, 0, 0, 0, 16),   //  3: r0 = dst
      Insn(XOR, 7, 0, 0, 0),    //  4: r7 ^= r0
      Insn(LDB, 0, 0, 0, 9),    //  5: r0 = protocol
      Insn(XOR, 7, 0, 0, 0),    //  6: r7 ^= r0
      Insn(MOV64, 8, 0, 0, 0),  //  7: r8 = protocol
      Insn(JEQ, 8, 0, 1, 6),    //  8: TCP: to 10
      Insn(JNE, 8, 0, 25, 17),  //  9: neither TCP nor UDP: to 35 (lane 0)
      Insn(LDH, 0, 0, 0, 6),    // 10: r0 = flags | fragment offset
      Insn(AND, 0, 0, 0, 0x1fff),  // 11
      Insn(JNE, 0, 0, 8, 0),    // 12: a later fragment: to 21 (no ports)
      Insn(LDB, 0, 0, 0, 0),    // 13: r0 = version | IHL
      Insn(AND, 0, 0, 0, 0x0f),  // 14
      Insn(LSH, 0, 0, 0, 2),    // 15: r0 = header length
      Insn(MOV64, 9, 0, 0, 0),  // 16: r9 = r0
      Insn(LDIH, 0, 9, 0, 0),   // 17: r0 = source port
      Insn(XOR, 7, 0, 0, 0),    // 18
      Insn(LDIH, 0, 9, 0, 2),   // 19: r0 = destination port
      Insn(XOR, 7, 0, 0, 0),    // 20
      Insn(MOV, 0, 7, 0, 0),    // 21: mix, as flowLane
      Insn(RSH, 0, 0, 0, 16),   // 22
      Insn(XOR, 7, 0, 0, 0),    // 23
      Insn(MUL, 7, 0, 0, kMul),  // 24
      Insn(MOV, 0, 7, 0, 0),    // 25
      Insn(RSH, 0, 0, 0, 16),   // 26
      Insn(XOR, 7, 0, 0, 0),    // 27
      Insn(MUL, 7, 0, 0, kMul),  // 28
      Insn(MOV, 0, 7, 0, 0),    // 29
      Insn(RSH, 0, 0, 0, 16),   // 30
      Insn(XOR, 7, 0, 0, 0),    // 31
      Insn(MOV, 0, 7, 0, 0),    // 32
      Insn(MOD, 0, 0, 0, static_cast<int32_t>(lanes)),  // 33: return r7 % lanes
      Insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),  // 34
      Insn(BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, 0),  // 35: return 0
      Insn(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),  // 36
  };
  return p;
}

// Loads the steering program; its fd, or -1 with errno (and the verifier's log in `log`).
int LoadFlowLane(uint32_t lanes, std::string* log) {
  std::vector<bpf_insn> prog = FlowLaneProgram(lanes);
  static char buf[4096];
  buf[0] = 0;
  bpf_attr a{};
  a.prog_type = BPF_PROG_TYPE_SOCKET_FILTER;
  a.insns = reinterpret_cast<uint64_t>(prog.data());
  a.insn_cnt = static_cast<uint32_t>(prog.size());
  a.license = reinterpret_cast<uint64_t>("Dual BSD/GPL");
  a.log_buf = reinterpret_cast<uint64_t>(buf);
  a.log_size = sizeof buf;
  a.log_level = 1;
  const int fd = static_cast<int>(syscall(SYS_bpf, BPF_PROG_LOAD, &a, sizeof a));
  if (fd < 0) *log = buf;
  return fd;
}

}  // namespace

bool AttachByQueue(int fd) {
  sock_fprog prog{};
  prog.len = sizeof kByQueue / sizeof kByQueue[0];
  prog.filter = kByQueue;
  return setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog, sizeof prog) == 0;
}

// tunSteerByFlow(fd, lanes): the TUN (any queue's fd) sends each packet to queue flowLane(packet, lanes)
// (2..16), or picks by its own flow table again (0). Needs CAP_NET_ADMIN and CAP_BPF (root).
Napi::Value TunSteerByFlow(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 2 || !info[0].IsNumber() || !info[1].IsNumber())
    throw Napi::TypeError::New(env, "tunSteerByFlow(fd, lanes)");
  const int tun = info[0].As<Napi::Number>().Int32Value();
  const uint32_t lanes = info[1].As<Napi::Number>().Uint32Value();
  if (lanes == 1 || lanes > 16) throw Napi::TypeError::New(env, "tunSteerByFlow: lanes must be 0 (off) or 2..16");
  int prog = -1;
  if (lanes > 0) {
    std::string log;
    prog = LoadFlowLane(lanes, &log);
    if (prog < 0) {
      const int e = errno;
      if (!log.empty()) throw Napi::Error::New(env, "tunSteerByFlow: the program was refused: " + log);
      throw ErrnoError(env, "bpf(BPF_PROG_LOAD)", e);
    }
  }
  // The TUN holds its own reference to the program: ours goes once it is attached.
  const int rc = ioctl(tun, TUNSETSTEERINGEBPF, &prog);
  const int e = errno;
  if (prog >= 0) ::close(prog);
  if (rc != 0) throw ErrnoError(env, "ioctl(TUNSETSTEERINGEBPF)", e);
  return env.Undefined();
}

}  // namespace pp
