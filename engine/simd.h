#pragma once
// Portable binaries still get wide vectors: hot loops are compiled for AVX-512, AVX2+FMA and baseline
// x86-64 and the loader picks one at start-up (GCC target_clones). Put it on leaf functions only: the
// bodies of OpenMP regions are outlined before cloning and would not be cloned.
// MAMBA_NO_MULTIVERSION (CMake MAMBA_MULTIVERSION=OFF) compiles them once, for thread-sanitizer builds.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__CUDACC__) && !defined(MAMBA_NO_MULTIVERSION)
#define MAMBA_HOT __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define MAMBA_HOT
#endif
