# Common part of the Debian cross toolchain files beside it (s390x.cmake,
# aarch64.cmake, armhf.cmake, i386.cmake); each sets SGRPC_CROSS_TRIPLET (the
# cross compiler's prefix), SGRPC_CROSS_MULTIARCH (Debian's library
# directory name), SGRPC_CROSS_PROCESSOR and SGRPC_CROSS_QEMU, then includes
# this file.
#
# Needs gcc-<triplet> (and g++-<triplet> for the C++ header test) and
# qemu-user. The target's libraries (nghttp2, zlib, protobuf-c, cmocka) come
# from one of two places:
#   - a private sysroot named by the environment variable SGRPC_CROSS_SYSROOT:
#     the target's .deb packages unpacked there (scripts/cross does this; it
#     leaves the machine's own packages alone), or
#   - Debian multiarch packages installed on this machine (libnghttp2-dev:ARCH
#     and so on) when SGRPC_CROSS_SYSROOT is unset.
# Tools that run during the build (protoc, protoc-c, protoc-gen-sgrpc) are the
# build machine's: set SGRPC_PROTOC_GEN_SGRPC to a natively built plugin.
# Tests run under qemu-user through CMAKE_CROSSCOMPILING_EMULATOR.
#
# The sysroot is read from the environment rather than the cache because
# CMake re-reads toolchain files for its try_compile projects, which see the
# environment but not the cache.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR ${SGRPC_CROSS_PROCESSOR})
set(CMAKE_C_COMPILER ${SGRPC_CROSS_TRIPLET}-gcc)
set(CMAKE_CXX_COMPILER ${SGRPC_CROSS_TRIPLET}-g++)
set(CMAKE_LIBRARY_ARCHITECTURE ${SGRPC_CROSS_MULTIARCH})

set(_sgrpc_sysroot "$ENV{SGRPC_CROSS_SYSROOT}")
set(_sgrpc_libdir "${_sgrpc_sysroot}/usr/lib/${SGRPC_CROSS_MULTIARCH}")

# Libraries and packages only from the target's trees; headers from those
# first, then the build machine's (the .proto files the build reads sit in
# /usr/include and /usr/share); programs only from the build machine.
set(CMAKE_FIND_ROOT_PATH /usr/${SGRPC_CROSS_TRIPLET})
if(_sgrpc_sysroot)
  list(PREPEND CMAKE_FIND_ROOT_PATH ${_sgrpc_sysroot})
else()
  list(APPEND CMAKE_FIND_ROOT_PATH /)
endif()
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# pkg-config answers for the target, never with the build machine's .pc files.
set(ENV{PKG_CONFIG_LIBDIR} "${_sgrpc_libdir}/pkgconfig:${_sgrpc_sysroot}/usr/share/pkgconfig")
set(ENV{PKG_CONFIG_PATH} "")
if(_sgrpc_sysroot)
  set(ENV{PKG_CONFIG_SYSROOT_DIR} "${_sgrpc_sysroot}")
  # the unpacked libraries are found at link time (also as dependencies of
  # other shared libraries) and at run time under qemu
  # Debian keeps some target headers (openssl/configuration.h) in the
  # multiarch include directory, which the cross compiler only looks for
  # under /usr/include on this machine
  foreach(lang C CXX)
    set(CMAKE_${lang}_STANDARD_INCLUDE_DIRECTORIES
      ${_sgrpc_sysroot}/usr/include/${SGRPC_CROSS_MULTIARCH} ${_sgrpc_sysroot}/usr/include)
  endforeach()
  set(_sgrpc_link "-Wl,-rpath,${_sgrpc_libdir} -Wl,-rpath-link,${_sgrpc_libdir}")
  set(CMAKE_EXE_LINKER_FLAGS_INIT "${_sgrpc_link}")
  set(CMAKE_SHARED_LINKER_FLAGS_INIT "${_sgrpc_link}")
  set(CMAKE_MODULE_LINKER_FLAGS_INIT "${_sgrpc_link}")
endif()

# qemu-user runs the target's binaries; -L makes the cross libc's loader and
# libraries (from libc6-<arch>-cross) the ones the binary sees as /lib.
# Test scripts that start binaries themselves (a server and a client) read
# the same command from the environment variable SGRPC_TEST_EMULATOR
# (scripts/cross exports it; set it when running ctest by hand).
set(CMAKE_CROSSCOMPILING_EMULATOR ${SGRPC_CROSS_QEMU} -L /usr/${SGRPC_CROSS_TRIPLET})
