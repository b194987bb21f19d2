# IBM Z, 64-bit big-endian: byte order of framing, varints, hpack lengths.
# Used by scripts/cross s390x; see debian-cross.cmake for what it needs.
set(SGRPC_CROSS_TRIPLET s390x-linux-gnu)
set(SGRPC_CROSS_MULTIARCH s390x-linux-gnu)
set(SGRPC_CROSS_PROCESSOR s390x)
set(SGRPC_CROSS_QEMU qemu-s390x)
include(${CMAKE_CURRENT_LIST_DIR}/debian-cross.cmake)
