# Interop tests against Python grpcio (gRPC C-core) and h2load (nghttp2),
# included from examples/CMakeLists.txt, which builds the demo binaries and
# lists the loops they have in SGRPC_DEMO_LOOPS. Every loop gets every
# direction, plaintext and mutual TLS (h2load: server-only TLS):
#   interop_<loop>_<plaintext|tls>_{py_client_sgrpc_server,
#                                   sgrpc_client_py_server, h2load_sgrpc_server}
set(SGRPC_INTEROP_DIR ${PROJECT_SOURCE_DIR}/tests/interop)
set(SGRPC_DEMO_BIN $<TARGET_FILE_DIR:sgrpc-demo-server>)
foreach(loop ${SGRPC_DEMO_LOOPS})
  foreach(sec plaintext tls)
    set(names)
    foreach(pair "py-client;py_client_sgrpc_server" "sgrpc-client;sgrpc_client_py_server"
                 "h2load;h2load_sgrpc_server")
      list(GET pair 0 mode)
      list(GET pair 1 what)
      add_test(NAME interop_${loop}_${sec}_${what}
        COMMAND ${SGRPC_INTEROP_DIR}/run.sh ${mode} ${SGRPC_DEMO_BIN} ${loop} ${sec})
      list(APPEND names interop_${loop}_${sec}_${what})
    endforeach()
    set_tests_properties(${names} PROPERTIES TIMEOUT 180)
  endforeach()
endforeach()
