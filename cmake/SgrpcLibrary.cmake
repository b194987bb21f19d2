# sgrpc_add_library(): one library of sgrpc, built static and shared, with
# its headers, its pkg-config file and its part of the CMake package.
#
#   sgrpc_add_library(NAME <component>
#     SOURCES <file>...                 # relative to the calling folder
#     [DEPS <component>...]             # other sgrpc libraries it is built on
#     [PUBLIC_LIBS <target>...]         # outside libraries its headers need
#     [PRIVATE_LIBS <target>...]        # outside libraries only its code needs
#     [HEADERS <file>...]               # installed into <includedir>/sgrpc; a
#                                       # configured header goes to
#                                       # ${SGRPC_GENERATED_INCLUDE_DIR}/sgrpc/,
#                                       # which every library has on its path
#     [DESCRIPTION <text>]
#     [NO_INSTALL])                     # built for the tests only
#
# For NAME uv it makes
#   targets   sgrpc_uv (static) and sgrpc_uv_shared, aliases sgrpc::uv_static
#             and sgrpc::uv (the names an installed package gives too);
#   files     libsgrpc-uv.a, libsgrpc-uv.so.0 and libsgrpc-uv.pc ('_' in
#             NAME becomes '-');
#   package   component "uv" of find_package(sgrpc), in the export set
#             sgrpc-uv-targets.
# NAME engine is the engine: targets sgrpc_static and sgrpc_shared, file
# libsgrpc, pkg-config module libsgrpc.
#
# Both variants compile with hidden visibility: the API is what the headers
# mark SGRPC_EXTERN. The shared one defines BUILDING_SGRPC, the static one
# SGRPC_STATICLIB (public, so its users see the same declarations).
#
# Every outside library must be one of the targets in the table below: the
# table says how pkg-config and the installed package find it again.

# target -> pkg-config module; target -> code that finds it for a consumer
set(_sgrpc_pc_PkgConfig::NGHTTP2 "libnghttp2 >= 1.52")
set(_sgrpc_find_PkgConfig::NGHTTP2 "_sgrpc_pkg_dep(NGHTTP2 libnghttp2>=1.52)")
set(_sgrpc_pc_ZLIB::ZLIB "zlib")
set(_sgrpc_find_ZLIB::ZLIB "_sgrpc_find_dep(ZLIB)")
set(_sgrpc_pc_PkgConfig::LIBUV "libuv >= 1.40")
set(_sgrpc_find_PkgConfig::LIBUV "_sgrpc_pkg_dep(LIBUV libuv>=1.40)")
set(_sgrpc_pc_PkgConfig::PROTOBUF_C "libprotobuf-c >= 1.3")
set(_sgrpc_find_PkgConfig::PROTOBUF_C "_sgrpc_pkg_dep(PROTOBUF_C libprotobuf-c>=1.3)")
set(_sgrpc_pc_PkgConfig::CARES "libcares >= 1.16")
set(_sgrpc_find_PkgConfig::CARES "_sgrpc_pkg_dep(CARES libcares>=1.16)")
set(_sgrpc_pc_OpenSSL::SSL "libssl")
set(_sgrpc_find_OpenSSL::SSL "_sgrpc_find_dep(OpenSSL 1.1.1)")
set(_sgrpc_pc_OpenSSL::Crypto "libcrypto")
set(_sgrpc_find_OpenSSL::Crypto "_sgrpc_find_dep(OpenSSL 1.1.1)")
set(_sgrpc_pc_PkgConfig::JANSSON "jansson >= 2.12")
set(_sgrpc_find_PkgConfig::JANSSON "_sgrpc_pkg_dep(JANSSON jansson>=2.12)")

include(CMakePackageConfigHelpers)
# configured public headers (<sgrpc/version.h>) of every library, in the build tree
set(SGRPC_GENERATED_INCLUDE_DIR ${PROJECT_BINARY_DIR}/include)
set(SGRPC_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/sgrpc)
set(_sgrpc_library_dir ${CMAKE_CURRENT_LIST_DIR})

# The static and shared target names of a component.
function(sgrpc_library_targets component out_static out_shared)
  if(component STREQUAL "engine")
    set(${out_static} sgrpc_static PARENT_SCOPE)
    set(${out_shared} sgrpc_shared PARENT_SCOPE)
  else()
    set(${out_static} sgrpc_${component} PARENT_SCOPE)
    set(${out_shared} sgrpc_${component}_shared PARENT_SCOPE)
  endif()
endfunction()

# The file stem (sgrpc, sgrpc-tls-openssl) of a component.
function(_sgrpc_library_stem component out)
  if(component STREQUAL "engine")
    set(${out} sgrpc PARENT_SCOPE)
  else()
    string(REPLACE "_" "-" dashed ${component})
    set(${out} sgrpc-${dashed} PARENT_SCOPE)
  endif()
endfunction()

function(sgrpc_add_library)
  cmake_parse_arguments(L "NO_INSTALL" "NAME;DESCRIPTION"
    "SOURCES;DEPS;PUBLIC_LIBS;PRIVATE_LIBS;HEADERS" ${ARGN})
  if(NOT L_NAME OR NOT L_SOURCES)
    message(FATAL_ERROR "sgrpc_add_library: NAME and SOURCES are required")
  endif()
  sgrpc_library_targets(${L_NAME} st sh)
  _sgrpc_library_stem(${L_NAME} stem)

  add_library(${st} STATIC ${L_SOURCES})
  add_library(${sh} SHARED ${L_SOURCES})
  foreach(t ${st} ${sh})
    target_include_directories(${t}
      PUBLIC $<BUILD_INTERFACE:${CMAKE_CURRENT_SOURCE_DIR}/include>
             $<BUILD_INTERFACE:${SGRPC_GENERATED_INCLUDE_DIR}>
             $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>
      PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/src)
    target_link_libraries(${t} PUBLIC ${L_PUBLIC_LIBS} PRIVATE ${L_PRIVATE_LIBS})
    set_target_properties(${t} PROPERTIES OUTPUT_NAME ${stem} C_VISIBILITY_PRESET hidden
      POSITION_INDEPENDENT_CODE ON)
  endforeach()
  foreach(d ${L_DEPS})
    sgrpc_library_targets(${d} dst dsh)
    target_link_libraries(${st} PUBLIC ${dst})
    target_link_libraries(${sh} PUBLIC ${dsh})
  endforeach()
  target_compile_definitions(${st} PUBLIC SGRPC_STATICLIB)
  target_compile_definitions(${sh} PRIVATE BUILDING_SGRPC)
  set_target_properties(${sh} PROPERTIES VERSION ${PROJECT_VERSION} SOVERSION 0
    EXPORT_NAME ${L_NAME})
  # an installed libsgrpc-uv.so finds libsgrpc-net.so beside it, wherever
  # the prefix is (an executable's RUNPATH does not cover its libraries')
  if(APPLE)
    set_target_properties(${sh} PROPERTIES INSTALL_RPATH "@loader_path")
  else()
    set_target_properties(${sh} PROPERTIES INSTALL_RPATH "$ORIGIN")
  endif()
  set_target_properties(${st} PROPERTIES EXPORT_NAME ${L_NAME}_static)
  add_library(sgrpc::${L_NAME} ALIAS ${sh})
  add_library(sgrpc::${L_NAME}_static ALIAS ${st})
  if(L_NO_INSTALL)
    return()
  endif()

  install(TARGETS ${st} ${sh} EXPORT sgrpc-${L_NAME}-targets
    ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
    LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
    RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
  install(EXPORT sgrpc-${L_NAME}-targets NAMESPACE sgrpc:: DESTINATION ${SGRPC_CMAKE_DIR})
  if(L_HEADERS)
    install(FILES ${L_HEADERS} DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/sgrpc)
    # the API reference (docs/CMakeLists.txt) covers every installed header
    foreach(h ${L_HEADERS})
      get_filename_component(h ${h} ABSOLUTE BASE_DIR ${CMAKE_CURRENT_SOURCE_DIR})
      set_property(GLOBAL APPEND PROPERTY SGRPC_PUBLIC_HEADERS ${h})
    endforeach()
  endif()

  # pkg-config: the sgrpc libraries below it are Requires (their headers are
  # included by this one's), outside libraries follow PUBLIC/PRIVATE.
  set(requires)
  foreach(d ${L_DEPS})
    _sgrpc_library_stem(${d} dstem)
    list(APPEND requires lib${dstem})
  endforeach()
  set(requires_private)
  set(finds)
  foreach(kind PUBLIC PRIVATE)
    foreach(lib ${L_${kind}_LIBS})
      if(NOT DEFINED _sgrpc_pc_${lib})
        message(FATAL_ERROR "sgrpc_add_library(${L_NAME}): ${lib} is not in the table of "
          "cmake/SgrpcLibrary.cmake")
      endif()
      if(kind STREQUAL "PUBLIC")
        list(APPEND requires "${_sgrpc_pc_${lib}}")
      else()
        list(APPEND requires_private "${_sgrpc_pc_${lib}}")
      endif()
      list(APPEND finds "${_sgrpc_find_${lib}}")
    endforeach()
  endforeach()
  list(REMOVE_DUPLICATES finds)
  list(JOIN requires ", " SGRPC_PC_REQUIRES)
  list(JOIN requires_private ", " SGRPC_PC_REQUIRES_PRIVATE)
  set(SGRPC_PC_NAME lib${stem})
  set(SGRPC_PC_LIB ${stem})
  set(SGRPC_PC_DESCRIPTION "${L_DESCRIPTION}")
  if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
    set(SGRPC_PC_LIBDIR "${CMAKE_INSTALL_LIBDIR}")
  else()
    set(SGRPC_PC_LIBDIR "\${prefix}/${CMAKE_INSTALL_LIBDIR}")
  endif()
  if(IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
    set(SGRPC_PC_INCLUDEDIR "${CMAKE_INSTALL_INCLUDEDIR}")
  else()
    set(SGRPC_PC_INCLUDEDIR "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
  endif()
  set(pc ${PROJECT_BINARY_DIR}/pkgconfig/lib${stem}.pc)
  configure_file(${_sgrpc_library_dir}/sgrpc.pc.in ${pc} @ONLY)
  install(FILES ${pc} DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

  # what sgrpcConfig.cmake needs to know about the component
  set_property(GLOBAL APPEND PROPERTY SGRPC_INSTALLED_COMPONENTS ${L_NAME})
  list(JOIN finds "\n  " finds)
  string(CONCAT entry "set(_sgrpc_deps_${L_NAME} \"${L_DEPS}\")\n"
    "macro(_sgrpc_find_${L_NAME})\n  ${finds}\nendmacro()\n")
  set_property(GLOBAL APPEND_STRING PROPERTY SGRPC_COMPONENT_TABLE "${entry}")
endfunction()

# After every library: writes and installs sgrpcConfig.cmake and its
# version file for the components made by sgrpc_add_library().
function(sgrpc_write_package)
  get_property(SGRPC_COMPONENTS GLOBAL PROPERTY SGRPC_INSTALLED_COMPONENTS)
  get_property(SGRPC_COMPONENT_TABLE GLOBAL PROPERTY SGRPC_COMPONENT_TABLE)
  set(out ${PROJECT_BINARY_DIR}/package)
  configure_package_config_file(${_sgrpc_library_dir}/sgrpcConfig.cmake.in
    ${out}/sgrpcConfig.cmake INSTALL_DESTINATION ${SGRPC_CMAKE_DIR})
  write_basic_package_version_file(${out}/sgrpcConfigVersion.cmake
    VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
  install(FILES ${out}/sgrpcConfig.cmake ${out}/sgrpcConfigVersion.cmake
    DESTINATION ${SGRPC_CMAKE_DIR})
endfunction()
