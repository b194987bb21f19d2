# 64-bit ARM, little-endian.
# Used by scripts/cross aarch64; see debian-cross.cmake for what it needs.
set(SGRPC_CROSS_TRIPLET aarch64-linux-gnu)
set(SGRPC_CROSS_MULTIARCH aarch64-linux-gnu)
set(SGRPC_CROSS_PROCESSOR aarch64)
set(SGRPC_CROSS_QEMU qemu-aarch64)
include(${CMAKE_CURRENT_LIST_DIR}/debian-cross.cmake)
