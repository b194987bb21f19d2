# Interop tests of the demo service against real gRPC stacks, included
# from examples/CMakeLists.txt, which builds the demo binaries and lists
# the loops they have in SGRPC_DEMO_LOOPS. Peers: Python grpcio (gRPC
# C-core) and grpc-go (its own HTTP/2), each as client and as server, and
# h2load (nghttp2) as a load client. Every loop gets every direction,
# plaintext and mutual TLS (h2load: server-only TLS):
#   interop_<loop>_<plaintext|tls>_<py_client_sgrpc_server | go_client_sgrpc_server |
#     sgrpc_client_py_server | sgrpc_client_go_server | h2load_sgrpc_server>
# The grpc-go peers are built first (offline, Debian's grpc-go) by the
# interop_go_build fixture.
set(SGRPC_INTEROP_DIR ${PROJECT_SOURCE_DIR}/tests/interop)
set(SGRPC_DEMO_BIN $<TARGET_FILE_DIR:sgrpc-demo-server>)
set(SGRPC_GO_DEMO_DIR ${CMAKE_CURRENT_BINARY_DIR}/interop-go)
add_test(NAME interop_go_build
  COMMAND ${SGRPC_INTEROP_DIR}/go/build.sh ${SGRPC_GO_DEMO_DIR})
set_tests_properties(interop_go_build PROPERTIES TIMEOUT 900 FIXTURES_SETUP interop_go)
foreach(loop ${SGRPC_DEMO_LOOPS})
  foreach(sec plaintext tls)
    set(names)
    foreach(pair "py-client;py_client_sgrpc_server" "go-client;go_client_sgrpc_server"
                 "sgrpc-client;sgrpc_client_py_server" "sgrpc-client-go;sgrpc_client_go_server"
                 "h2load;h2load_sgrpc_server")
      list(GET pair 0 mode)
      list(GET pair 1 what)
      set(name interop_${loop}_${sec}_${what})
      add_test(NAME ${name}
        COMMAND ${SGRPC_INTEROP_DIR}/run.sh ${mode} ${SGRPC_DEMO_BIN} ${loop} ${sec})
      if(mode MATCHES "go")
        set_tests_properties(${name} PROPERTIES FIXTURES_REQUIRED interop_go
          ENVIRONMENT GO_DEMO_DIR=${SGRPC_GO_DEMO_DIR})
      endif()
      list(APPEND names ${name})
    endforeach()
    set_tests_properties(${names} PROPERTIES TIMEOUT 180)
  endforeach()
endforeach()
