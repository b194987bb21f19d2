# sgrpc_generate(TARGET <target> PROTOS <file.proto>...
#                [IMPORT_DIRS <dir>...] [OUT_DIR <dir>])
#
# Runs protoc with protoc-c (--c_out) and protoc-gen-sgrpc (--sgrpc_out) on
# each .proto and adds the generated sources to <target>, with OUT_DIR
# (default: ${CMAKE_CURRENT_BINARY_DIR}/sgrpc_gen) on its include path.
# Files are named relative to the first IMPORT_DIRS entry that contains
# them (default: the .proto's own directory), as protoc does, so
# "a/b.proto" yields OUT_DIR/a/b.pb-c.{c,h} and, when the file declares a
# service, OUT_DIR/a/b.sgrpc.{c,h}. Link <target> with sgrpc::rpc (or
# sgrpc_rpc in-tree).
#
# The plugin is SGRPC_PROTOC_GEN_SGRPC when set (it must run on the build
# machine: a cross build names a native one), else the in-tree
# protoc-gen-sgrpc target when present, else protoc-gen-sgrpc found on PATH.

find_program(SGRPC_PROTOC protoc)
find_program(SGRPC_PROTOC_C_PLUGIN protoc-gen-c)

function(sgrpc_generate)
  cmake_parse_arguments(SG "" "TARGET;OUT_DIR" "PROTOS;IMPORT_DIRS" ${ARGN})
  if(NOT SG_TARGET OR NOT SG_PROTOS)
    message(FATAL_ERROR "sgrpc_generate: TARGET and PROTOS are required")
  endif()
  if(NOT SGRPC_PROTOC)
    message(FATAL_ERROR "sgrpc_generate: protoc not found (install protobuf-compiler)")
  endif()
  if(NOT SGRPC_PROTOC_C_PLUGIN)
    message(FATAL_ERROR "sgrpc_generate: protoc-gen-c not found (install protobuf-c-compiler)")
  endif()
  if(NOT SG_OUT_DIR)
    set(SG_OUT_DIR ${CMAKE_CURRENT_BINARY_DIR}/sgrpc_gen)
  endif()
  if(SGRPC_PROTOC_GEN_SGRPC)
    # named by the user: a cross build's native plugin, or the installed one
    set(plugin ${SGRPC_PROTOC_GEN_SGRPC})
    set(plugin_dep ${SGRPC_PROTOC_GEN_SGRPC})
  elseif(TARGET protoc-gen-sgrpc)
    set(plugin $<TARGET_FILE:protoc-gen-sgrpc>)
    set(plugin_dep protoc-gen-sgrpc)
  else()
    find_program(SGRPC_PROTOC_GEN_SGRPC protoc-gen-sgrpc REQUIRED)
    set(plugin ${SGRPC_PROTOC_GEN_SGRPC})
    set(plugin_dep ${SGRPC_PROTOC_GEN_SGRPC})
  endif()
  file(MAKE_DIRECTORY ${SG_OUT_DIR})

  set(import_args)
  foreach(d ${SG_IMPORT_DIRS})
    get_filename_component(d ${d} ABSOLUTE)
    list(APPEND import_args -I${d})
  endforeach()

  set(all_out)
  foreach(proto ${SG_PROTOS})
    get_filename_component(abs ${proto} ABSOLUTE)
    set(root "")
    foreach(d ${SG_IMPORT_DIRS})
      get_filename_component(d ${d} ABSOLUTE)
      file(RELATIVE_PATH rel ${d} ${abs})
      if(NOT rel MATCHES "^\\.\\./" AND NOT root)
        set(root ${d})
      endif()
    endforeach()
    set(extra_import)
    if(NOT root)
      get_filename_component(root ${abs} DIRECTORY)
      set(extra_import -I${root})
    endif()
    file(RELATIVE_PATH rel ${root} ${abs})
    string(REGEX REPLACE "\\.proto$" "" base ${rel})
    set(outs ${SG_OUT_DIR}/${base}.pb-c.c ${SG_OUT_DIR}/${base}.pb-c.h)
    # The plugin writes .sgrpc.{c,h} only for files that declare a service;
    # look for one outside comments (a commented-out "service X {" must not
    # promise outputs that never come).
    file(READ ${abs} text)
    string(REGEX REPLACE "/\\*([^*]|\\*+[^*/])*\\*+/" " " text "${text}")
    string(REGEX REPLACE "//[^\n]*" " " text "${text}")
    string(REGEX MATCH "(^|[;{}\n \t\r])service[ \t\r\n]+[A-Za-z_]" has_service "${text}")
    if(has_service)
      list(APPEND outs ${SG_OUT_DIR}/${base}.sgrpc.c ${SG_OUT_DIR}/${base}.sgrpc.h)
    endif()
    add_custom_command(
      OUTPUT ${outs}
      COMMAND ${SGRPC_PROTOC} --plugin=protoc-gen-c=${SGRPC_PROTOC_C_PLUGIN}
              --plugin=protoc-gen-sgrpc=${plugin}
              --c_out=${SG_OUT_DIR} --sgrpc_out=${SG_OUT_DIR}
              ${extra_import} ${import_args} ${abs}
      DEPENDS ${abs} ${plugin_dep}
      COMMENT "protoc-gen-sgrpc ${rel}"
      VERBATIM)
    list(APPEND all_out ${outs})
  endforeach()
  target_sources(${SG_TARGET} PRIVATE ${all_out})
  target_include_directories(${SG_TARGET} PUBLIC $<BUILD_INTERFACE:${SG_OUT_DIR}>)
endfunction()
