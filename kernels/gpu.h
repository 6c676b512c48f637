#pragma once
// The GPU side of a kernel family. Each kernels/<op>.cu is compiled twice from the same source:
//  - by nvcc into namespace chex::kernels::cuda: the CUDA backend's launchers (device pointers);
//  - against the emulator (kernels/emu/) into chex::kernels::emu: the same launchers run on the
//    CPU (host pointers), which the tests compare with the CPU twins in chex::kernels::cpu.
// So <op>.h declares its launchers once, inside namespace chex::kernels::CHEX_GPU_NAMESPACE; the
// emulated build (targets linking chex_kernels_emu) defines CHEX_EMULATOR.
// Launchers take the same (Queue, arguments) as their CPU twins and never synchronise; pointers may
// be null when a count is 0.
#include "kernels/queue.h"

#if defined(CHEX_EMULATOR)
#define CHEX_GPU_NAMESPACE emu
#else
#define CHEX_GPU_NAMESPACE cuda
#endif
