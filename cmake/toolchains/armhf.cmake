# 32-bit ARM (hard float), little-endian: 32-bit size_t and long, 8-byte aligned 64-bit types.
# Used by scripts/cross armhf; see debian-cross.cmake for what it needs.
set(SGRPC_CROSS_TRIPLET arm-linux-gnueabihf)
set(SGRPC_CROSS_MULTIARCH arm-linux-gnueabihf)
set(SGRPC_CROSS_PROCESSOR arm)
set(SGRPC_CROSS_QEMU qemu-arm)
include(${CMAKE_CURRENT_LIST_DIR}/debian-cross.cmake)
