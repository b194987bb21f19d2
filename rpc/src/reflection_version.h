/*
 * One ServerReflectionInfo handler per reflection package, included by
 * reflection.c with RT (types), RF (functions), RC (constants) and RN
 * (names of the functions made here) defined for that package.
 */

/* Answers q on call. Returns 0 when the answer went out,
 * SGRPC_ERR_WOULDBLOCK when it did not fit (nothing sent), or another
 * negative code after the call was failed (or had ended). */
static int RN(answer)(sgrpc_reflection *r, sgrpc_server_call *call,
                      const RT(ServerReflectionRequest) * q) {
  RT(ServerReflectionResponse) resp = RC(SERVER_REFLECTION_RESPONSE__INIT);
  RT(ListServiceResponse) list = RC(LIST_SERVICE_RESPONSE__INIT);
  RT(FileDescriptorResponse) files = RC(FILE_DESCRIPTOR_RESPONSE__INIT);
  RT(ErrorResponse) err = RC(ERROR_RESPONSE__INIT);
  RT(ExtensionNumberResponse) nums = RC(EXTENSION_NUMBER_RESPONSE__INIT);
  RT(ServiceResponse) *svc = NULL, **svcp = NULL;
  refl_answer a;
  const char *arg = "";
  int32_t number = 0;
  int query = Q_NONE, rv;
  size_t i;

  switch (q->message_request_case) {
  case RC(SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_LIST_SERVICES):
    query = Q_LIST;
    break;
  case RC(SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_BY_FILENAME):
    query = Q_FILE;
    arg = q->file_by_filename;
    break;
  case RC(SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL):
    query = Q_SYMBOL;
    arg = q->file_containing_symbol;
    break;
  case RC(SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_EXTENSION):
    query = Q_EXTENSION;
    if (q->file_containing_extension) {
      arg = q->file_containing_extension->containing_type;
      number = q->file_containing_extension->extension_number;
    }
    break;
  case RC(SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_ALL_EXTENSION_NUMBERS_OF_TYPE):
    query = Q_EXTENSION_NUMBERS;
    arg = q->all_extension_numbers_of_type;
    break;
  default:
    break;
  }
  rv = refl_answer_query(r, query, arg ? arg : "", number, &a);
  if (rv == 0 && a.kind == A_LIST && a.n) {
    svc = rpc_malloc(&r->mem, a.n * sizeof(*svc));
    svcp = rpc_malloc(&r->mem, a.n * sizeof(*svcp));
    if (!svc || !svcp) rv = SGRPC_ERR_NOMEM;
  }
  if (rv < 0) {
    rpc_free(&r->mem, svc);
    rpc_free(&r->mem, svcp);
    refl_answer_clear(r, &a);
    (void)sgrpc_server_call_fail(call, SGRPC_STATUS_RESOURCE_EXHAUSTED, "Out of memory");
    return rv;
  }
  resp.valid_host = q->host;
  resp.original_request = (RT(ServerReflectionRequest) *)q;
  if (a.kind == A_LIST) {
    for (i = 0; i < a.n; i++) {
      RF(service_response__init)(&svc[i]);
      svc[i].name = (char *)r->services[i];
      svcp[i] = &svc[i];
    }
    list.n_service = a.n;
    list.service = svcp;
    resp.message_response_case = RC(SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_LIST_SERVICES_RESPONSE);
    resp.list_services_response = &list;
  } else if (a.kind == A_FILES) {
    files.n_file_descriptor_proto = a.n;
    files.file_descriptor_proto = a.files;
    resp.message_response_case = RC(SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_FILE_DESCRIPTOR_RESPONSE);
    resp.file_descriptor_response = &files;
  } else if (a.kind == A_NUMBERS) {
    nums.base_type_name = (char *)arg;
    nums.n_extension_number = a.n;
    nums.extension_number = a.numbers;
    resp.message_response_case =
        RC(SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ALL_EXTENSION_NUMBERS_RESPONSE);
    resp.all_extension_numbers_response = &nums;
  } else {
    err.error_code = a.code;
    err.error_message = (char *)a.message;
    resp.message_response_case = RC(SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE);
    resp.error_response = &err;
  }
  rv = sgrpc_server_call_send(call, &resp); /* packs now: the arrays may go */
  rpc_free(&r->mem, svc);
  rpc_free(&r->mem, svcp);
  refl_answer_clear(r, &a);
  if (rv < 0 && rv != SGRPC_ERR_WOULDBLOCK && rv != SGRPC_ERR_CALL_CLOSED &&
      rv != SGRPC_ERR_INVALID_STATE)
    (void)sgrpc_server_call_fail(call, rv == SGRPC_ERR_MESSAGE_TOO_LARGE ||
                                               rv == SGRPC_ERR_NOMEM
                                           ? SGRPC_STATUS_RESOURCE_EXHAUSTED
                                           : SGRPC_STATUS_INTERNAL,
                                 sgrpc_strerror(rv));
  return rv;
}

static void RN(pack)(const void *q, uint8_t *out) {
  (void)RF(server_reflection_request__pack)((const RT(ServerReflectionRequest) *)q, out);
}

static void RN(on_info)(sgrpc_server_call *call, const RT(ServerReflectionRequest) * q,
                        void *ud) {
  sgrpc_reflection *r = ud;
  refl_call *st = sgrpc_server_call_get_user_data(call);
  int code;
  if (!q) { /* the client half-closed */
    if (st && st->head) st->finish = 1; /* after the backlog */
    else (void)sgrpc_server_call_finish(call, NULL);
    return;
  }
  /* behind a backlog the answer waits its turn, to keep the order */
  if (!(st && st->head) && RN(answer)(r, call, q) != SGRPC_ERR_WOULDBLOCK) return;
  code = refl_defer(r, call, RF(server_reflection_request__get_packed_size)(q), RN(pack), q);
  if (code)
    (void)sgrpc_server_call_fail(call, code,
                                 "reflection client does not read its answers");
}

/* The call has room again: answer the waiting requests in order. */
static void RN(on_writable)(sgrpc_server_call *call, void *ud) {
  sgrpc_reflection *r = ud;
  refl_call *st = sgrpc_server_call_get_user_data(call);
  ProtobufCAllocator alloc;
  if (!st) return;
  sgrpc_protobuf_allocator(&alloc, &r->mem);
  while (st->head) {
    RT(ServerReflectionRequest) *q = RF(server_reflection_request__unpack)(
        &alloc, st->head->len, (const uint8_t *)(st->head + 1));
    int rv;
    if (!q) { /* it was packed here: only memory can be missing */
      (void)sgrpc_server_call_fail(call, SGRPC_STATUS_RESOURCE_EXHAUSTED, "Out of memory");
      return;
    }
    rv = RN(answer)(r, call, q);
    RF(server_reflection_request__free_unpacked)(q, &alloc);
    if (rv == SGRPC_ERR_WOULDBLOCK) return;
    refl_pending_pop(r, st);
    if (rv < 0) return; /* the call was failed */
  }
  if (st->finish) (void)sgrpc_server_call_finish(call, NULL);
}

static int RN(register)(sgrpc_reflection *r, sgrpc_router *router) {
  RT(ServerReflection_SgrpcServer) impl;
  memset(&impl, 0, sizeof(impl));
  impl.server_reflection_info = RN(on_info);
  impl.on_writable = RN(on_writable);
  impl.on_close = refl_on_close;
  return RF(server_reflection__sgrpc_register)(router, &impl, r);
}
