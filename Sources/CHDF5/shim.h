#pragma once
// HDF5's type and property-list identifiers are macros over *_g globals that Swift cannot import
// (and that trip Swift 6 concurrency checks). Each one is wrapped in a static inline function here.
#include <hdf5.h>
// The high-level library's dimension scales (H5DS; libhdf5_hl): named dimensions that netCDF and xarray read.
#include <hdf5_hl.h>
// zlib (a dependency of libhdf5-dev): RuleLensStore compresses chunks itself, on every core, in HDF5's deflate format.
#include <zlib.h>

static inline hid_t rl_H5P_DEFAULT(void) { return H5P_DEFAULT; }
static inline hid_t rl_H5S_ALL(void) { return H5S_ALL; }
static inline hsize_t rl_H5S_UNLIMITED(void) { return H5S_UNLIMITED; }
static inline size_t rl_H5T_VARIABLE(void) { return H5T_VARIABLE; }

static inline hid_t rl_H5T_NATIVE_FLOAT(void) { return H5T_NATIVE_FLOAT; }
static inline hid_t rl_H5T_NATIVE_DOUBLE(void) { return H5T_NATIVE_DOUBLE; }
static inline hid_t rl_H5T_NATIVE_INT8(void) { return H5T_NATIVE_INT8; }
static inline hid_t rl_H5T_NATIVE_UINT8(void) { return H5T_NATIVE_UINT8; }
static inline hid_t rl_H5T_NATIVE_INT32(void) { return H5T_NATIVE_INT32; }
static inline hid_t rl_H5T_NATIVE_INT64(void) { return H5T_NATIVE_INT64; }
static inline hid_t rl_H5T_IEEE_F32LE(void) { return H5T_IEEE_F32LE; }
static inline hid_t rl_H5T_IEEE_F64LE(void) { return H5T_IEEE_F64LE; }
static inline hid_t rl_H5T_STD_I8LE(void) { return H5T_STD_I8LE; }
static inline hid_t rl_H5T_STD_I32LE(void) { return H5T_STD_I32LE; }
static inline hid_t rl_H5T_STD_I64LE(void) { return H5T_STD_I64LE; }
static inline hid_t rl_H5T_C_S1(void) { return H5T_C_S1; }

static inline hid_t rl_H5P_FILE_CREATE(void) { return H5P_FILE_CREATE; }
static inline hid_t rl_H5P_FILE_ACCESS(void) { return H5P_FILE_ACCESS; }
static inline hid_t rl_H5P_DATASET_CREATE(void) { return H5P_DATASET_CREATE; }
static inline hid_t rl_H5P_DATASET_ACCESS(void) { return H5P_DATASET_ACCESS; }
static inline hid_t rl_H5P_DATASET_XFER(void) { return H5P_DATASET_XFER; }
static inline hid_t rl_H5P_LINK_CREATE(void) { return H5P_LINK_CREATE; }

static inline unsigned rl_H5F_ACC_RDONLY(void) { return H5F_ACC_RDONLY; }
static inline unsigned rl_H5F_ACC_RDWR(void) { return H5F_ACC_RDWR; }
static inline unsigned rl_H5F_ACC_TRUNC(void) { return H5F_ACC_TRUNC; }
static inline unsigned rl_H5F_ACC_EXCL(void) { return H5F_ACC_EXCL; }

/// Turns off HDF5's automatic error printing to stderr; RuleLens reports errors itself.
static inline void rl_H5_silence_errors(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }
