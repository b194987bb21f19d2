# 32-bit x86: 32-bit size_t and long, 4-byte aligned 64-bit types in structs.
# Used by scripts/cross i386; see debian-cross.cmake for what it needs.
set(SGRPC_CROSS_TRIPLET i686-linux-gnu)
set(SGRPC_CROSS_MULTIARCH i386-linux-gnu)
set(SGRPC_CROSS_PROCESSOR i686)
set(SGRPC_CROSS_QEMU qemu-i386)
include(${CMAKE_CURRENT_LIST_DIR}/debian-cross.cmake)
