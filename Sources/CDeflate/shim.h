#pragma once
// libdeflate (Debian: libdeflate-dev): whole-buffer DEFLATE in the zlib format, 2-3x faster than zlib's compress2
// at the same level and ratio. RuleLensStore uses it to deflate HDF5 chunks; any HDF5 reader inflates them with zlib.
#include <libdeflate.h>
