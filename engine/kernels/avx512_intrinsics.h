// <immintrin.h> for the AVX-512 files. GCC 12 wrongly reports its own _mm512_undefined_*
// placeholders as uninitialized (GCC bug 105593, fixed in 13) wherever intrinsics that use them
// are inlined; the warnings point into the header, so silencing them around it is enough.
#pragma once
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop
