#pragma once
#include <cstdint>
#include <string_view>
#include <type_traits>

#include "tlk/tensor/error.h"

namespace tlk {

/// Element types. f32 and f64 are computed on everywhere (f64 is the gradient-check oracle);
/// bf16 and f16 are reserved for the GPU backend; the integer types hold labels and raw volumes.
enum class DType : std::uint8_t { f32, f64, bf16, f16, i64, i32, u8 };

/// Bytes per element.
constexpr std::size_t element_size(DType t) {
  switch (t) {
    case DType::f32:
      return 4;
    case DType::f64:
      return 8;
    case DType::bf16:
      return 2;
    case DType::f16:
      return 2;
    case DType::i64:
      return 8;
    case DType::i32:
      return 4;
    case DType::u8:
      return 1;
  }
  return 0;
}

/// Short name as printed in messages: "f32", "f64", ...
constexpr std::string_view dtype_name(DType t) {
  switch (t) {
    case DType::f32:
      return "f32";
    case DType::f64:
      return "f64";
    case DType::bf16:
      return "bf16";
    case DType::f16:
      return "f16";
    case DType::i64:
      return "i64";
    case DType::i32:
      return "i32";
    case DType::u8:
      return "u8";
  }
  return "?";
}

constexpr bool is_floating(DType t) {
  return t == DType::f32 || t == DType::f64 || t == DType::bf16 || t == DType::f16;
}

/// The DType of a C++ element type: dtype_of<float>() == DType::f32.
template <class T>
constexpr DType dtype_of() {
  if constexpr (std::is_same_v<T, float>)
    return DType::f32;
  else if constexpr (std::is_same_v<T, double>)
    return DType::f64;
  else if constexpr (std::is_same_v<T, std::int64_t>)
    return DType::i64;
  else if constexpr (std::is_same_v<T, std::int32_t>)
    return DType::i32;
  else if constexpr (std::is_same_v<T, std::uint8_t>)
    return DType::u8;
  else
    static_assert(sizeof(T) == 0, "no TLK dtype for this C++ type");
}

template <class T>
struct TypeTag {
  using type = T;
};

/// Calls `fn(TypeTag<T>{})` with T = float or double; any other dtype is an error naming `op`.
/// Example: `visit_floating(x.dtype(), "relu", [&](auto tag) { using T = typename decltype(tag)::type; ... });`
template <class Fn>
decltype(auto) visit_floating(DType t, std::string_view op, Fn&& fn) {
  switch (t) {
    case DType::f32:
      return fn(TypeTag<float>{});
    case DType::f64:
      return fn(TypeTag<double>{});
    default:
      fail("{}: dtype {} is not supported on the CPU (expected f32 or f64)", op, dtype_name(t));
  }
}

/// Calls `fn(TypeTag<T>{})` for every dtype that has a CPU element type (all but bf16/f16).
template <class Fn>
decltype(auto) visit_cpu_dtype(DType t, std::string_view op, Fn&& fn) {
  switch (t) {
    case DType::f32:
      return fn(TypeTag<float>{});
    case DType::f64:
      return fn(TypeTag<double>{});
    case DType::i64:
      return fn(TypeTag<std::int64_t>{});
    case DType::i32:
      return fn(TypeTag<std::int32_t>{});
    case DType::u8:
      return fn(TypeTag<std::uint8_t>{});
    default:
      fail("{}: dtype {} has no CPU implementation (it is reserved for the GPU backend)", op, dtype_name(t));
  }
}

}  // namespace tlk
