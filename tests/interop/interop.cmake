# Interop tests against Python grpcio (gRPC C-core) and h2load; included
# from examples/CMakeLists.txt, which builds the demo binaries.
set(SGRPC_INTEROP_DIR ${PROJECT_SOURCE_DIR}/tests/interop)
set(SGRPC_DEMO_BIN $<TARGET_FILE_DIR:sgrpc-demo-server>)
add_test(NAME interop_py_client_sgrpc_server
  COMMAND ${SGRPC_INTEROP_DIR}/run.sh py-client ${SGRPC_DEMO_BIN})
add_test(NAME interop_sgrpc_client_py_server
  COMMAND ${SGRPC_INTEROP_DIR}/run.sh sgrpc-client ${SGRPC_DEMO_BIN})
add_test(NAME interop_h2load_sgrpc_server
  COMMAND ${SGRPC_INTEROP_DIR}/run.sh h2load ${SGRPC_DEMO_BIN})
set_tests_properties(interop_py_client_sgrpc_server interop_sgrpc_client_py_server
  interop_h2load_sgrpc_server PROPERTIES TIMEOUT 180)
