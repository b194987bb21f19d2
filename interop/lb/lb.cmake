# Load balancing and proxies against real peers (interop/lb; issue 13),
# included from interop/sgrpc/CMakeLists.txt where sgrpc-interop-server,
# sgrpc-interop-client and sgrpc-lb-client are built. Every test runs on
# 127.0.0.1 and skips (exit 77) only when a peer program is missing:
#   interop_rr_<client>_client_3_<server>_servers  round_robin over three
#       backends that report their id, one killed mid-run (run_rr.sh)
#   interop_<proxy>_<client>_client_cases          every standard interop
#       case through HAProxy or nghttpx to three sgrpc servers (run_proxy.sh)
#   interop_{haproxy,haproxy_noreplay,nghttpx}_sgrpc_client_backend_killed
#       a backend behind the proxy killed mid-run (run_proxy.sh kill,
#       kill-noreplay, kill-window)
# The grpc-go programs (go-lb-client, go-lb-server, go-interop-client) are
# built with the project when go and Debian's grpc-go are there.
set(lb_dir ${PROJECT_SOURCE_DIR}/interop/lb)
set(lb_go ${CMAKE_CURRENT_BINARY_DIR}/lb-go)
find_program(SGRPC_LB_GO go)
if(SGRPC_LB_GO AND EXISTS /usr/share/gocode/src/google.golang.org/grpc/resolver/manual)
  file(GLOB lb_go_src CONFIGURE_DEPENDS ${lb_dir}/go/*/*.go
       ${PROJECT_SOURCE_DIR}/interop/peers/go/client/*.go
       ${PROJECT_SOURCE_DIR}/interop/peers/go/gzipflag/*.go)
  add_custom_command(
    OUTPUT ${lb_go}/go-lb-client ${lb_go}/go-lb-server ${lb_go}/go-interop-client
    COMMAND ${CMAKE_COMMAND} -E env PATH=$ENV{PATH} sh ${lb_dir}/go/build.sh ${lb_go}
    DEPENDS ${lb_go_src} ${lb_dir}/go/build.sh
    COMMENT "go build interop/lb peers (grpc-go from /usr/share/gocode)" VERBATIM)
  add_custom_target(sgrpc_lb_go_peers ALL
    DEPENDS ${lb_go}/go-lb-client ${lb_go}/go-lb-server ${lb_go}/go-interop-client)
else()
  message(STATUS "interop/lb: go or grpc-go missing; the grpc-go load-balancing tests will skip")
endif()

set(lb_server $<TARGET_FILE:sgrpc-interop-server>)
set(lb_tests)
macro(lb_test name)
  add_test(NAME ${name} COMMAND ${ARGN})
  list(APPEND lb_tests ${name})
endmacro()
# 1. grpc-go's client, round_robin (manual resolver), three sgrpc servers
lb_test(interop_rr_grpcgo_client_3_sgrpc_servers
  ${lb_dir}/run_rr.sh ${lb_server} ${lb_go}/go-lb-client)
# 2. grpcio's client, round_robin (ipv4: target), three sgrpc servers
lb_test(interop_rr_grpcio_client_3_sgrpc_servers
  ${lb_dir}/run_rr.sh ${lb_server} /usr/bin/python3 ${lb_dir}/py_lb_client.py)
# 3. three grpc-go servers, with grpcio's client and with sgrpc's
#    round_robin channel (and sgrpc's over three sgrpc servers)
lb_test(interop_rr_grpcio_client_3_grpcgo_servers
  ${lb_dir}/run_rr.sh ${lb_go}/go-lb-server /usr/bin/python3 ${lb_dir}/py_lb_client.py)
lb_test(interop_rr_sgrpc_client_3_grpcgo_servers
  ${lb_dir}/run_rr.sh ${lb_go}/go-lb-server $<TARGET_FILE:sgrpc-lb-client>
  --lb_policy=round_robin --retry_unavailable=3)
lb_test(interop_rr_sgrpc_client_3_sgrpc_servers
  ${lb_dir}/run_rr.sh ${lb_server} $<TARGET_FILE:sgrpc-lb-client>
  --lb_policy=round_robin --retry_unavailable=3)
# 4. behind HAProxy and nghttpx
foreach(proxy haproxy nghttpx)
  lb_test(interop_${proxy}_sgrpc_client_cases
    ${lb_dir}/run_proxy.sh ${proxy} cases ${lb_server} $<TARGET_FILE:sgrpc-interop-client>)
  lb_test(interop_${proxy}_grpcgo_client_cases
    ${lb_dir}/run_proxy.sh ${proxy} cases ${lb_server} ${lb_go}/go-interop-client)
endforeach()
lb_test(interop_haproxy_sgrpc_client_backend_killed
  ${lb_dir}/run_proxy.sh haproxy kill ${lb_server} $<TARGET_FILE:sgrpc-lb-client>)
lb_test(interop_haproxy_noreplay_sgrpc_client_backend_killed
  ${lb_dir}/run_proxy.sh haproxy kill-noreplay ${lb_server} $<TARGET_FILE:sgrpc-lb-client>)
lb_test(interop_nghttpx_sgrpc_client_backend_killed
  ${lb_dir}/run_proxy.sh nghttpx kill-window ${lb_server} $<TARGET_FILE:sgrpc-lb-client>)
set_tests_properties(${lb_tests} PROPERTIES TIMEOUT 180 SKIP_RETURN_CODE 77)
