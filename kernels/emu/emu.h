#pragma once
// The emulator's settings for tests: thread schedule and fiber stack size. Kernel sources include
// kernels/cuda_compat.h instead.
#include "kernels/emu/schedule.h"
