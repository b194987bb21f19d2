# Loaded with `ruby -r` before gRPC's official Ruby interop server
# (src/ruby/pb/test/server.rb of the ruby-grpc package), which binds
# 0.0.0.0 and lets C-core share a port with any other SO_REUSEPORT
# listener. The matrix runs on 127.0.0.1 only and must see a taken port
# fail, so this binds the same port on 127.0.0.1 and turns SO_REUSEPORT
# off. Its run_till_terminated leaves SIGTERM to Ruby's default handler,
# which tears C-core down mid-flight and aborts (SIGABRT); the matrix stops
# servers with SIGTERM, so this runs the library's own
# run_till_terminated_or_interrupted, which stops the server cleanly on
# TERM or INT. Nothing else of the server changes.
require 'grpc'

module SgrpcInteropLoopbackOnly
  def initialize(**kw)
    args = (kw[:server_args] || {}).merge('grpc.so_reuseport' => 0)
    super(**kw, server_args: args)
  end

  def add_http2_port(host, creds)
    super(host.sub(/\A(0\.0\.0\.0|\[::\]):/, '127.0.0.1:'), creds)
  end

  def run_till_terminated
    run_till_terminated_or_interrupted(%w[TERM INT], 1)
  end
end

GRPC::RpcServer.prepend(SgrpcInteropLoopbackOnly)
