// Int4 packing, byte for byte as ONNX stores INT4 / UINT4 tensors in raw_data: two values per
// byte, element 0 in the LOW nibble, element 1 in the high nibble; an odd count leaves the high
// nibble of the last byte 0. Signed values are 4-bit two's complement ([-8, 7]); unsigned are
// [0, 15]. A matrix [rows, cols] is packed as one contiguous row-major tensor, so the bytes can
// go into an ONNX initializer unchanged.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace sq {

// Bytes needed for `n` int4 values.
inline size_t Int4Bytes(size_t n) { return (n + 1) / 2; }

// Packs values (each in [-8, 7] when `is_signed`, else [0, 15]); throws Error when one is out of
// range.
std::vector<uint8_t> PackInt4(std::span<const int8_t> values, bool is_signed);

// Element `i` of a packed buffer.
inline int Int4At(const uint8_t* packed, size_t i, bool is_signed) {
  const int nibble = (packed[i / 2] >> ((i & 1) * 4)) & 0xF;
  return is_signed && nibble >= 8 ? nibble - 16 : nibble;
}

// Writes element `i` (the buffer must already be sized; the other nibble is kept).
inline void SetInt4(uint8_t* packed, size_t i, int value) {
  const int shift = (i & 1) * 4;
  packed[i / 2] = static_cast<uint8_t>((packed[i / 2] & ~(0xF << shift)) | ((value & 0xF) << shift));
}

// Unpacks `n` values.
std::vector<int8_t> UnpackInt4(std::span<const uint8_t> packed, size_t n, bool is_signed);

}  // namespace sq
