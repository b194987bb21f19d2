/*
 * One ServerReflectionInfo handler per reflection package, included by
 * reflection.c with RT (types), RF (functions), RC (constants) and RN
 * (names of the functions made here) defined for that package.
 */

static void RN(on_info)(sgrpc_server_call *call, const RT(ServerReflectionRequest) * q,
                        void *ud) {
  sgrpc_reflection *r = ud;
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

  if (!q) { /* the client half-closed: every answer is queued already */
    (void)sgrpc_server_call_finish(call, NULL);
    return;
  }
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
    svc = x_malloc(&r->mem, a.n * sizeof(*svc));
    svcp = x_malloc(&r->mem, a.n * sizeof(*svcp));
    if (!svc || !svcp) rv = SGRPC_ERR_NOMEM;
  }
  if (rv < 0) {
    x_free(&r->mem, svc);
    x_free(&r->mem, svcp);
    refl_answer_clear(r, &a);
    (void)sgrpc_server_call_fail(call, SGRPC_STATUS_RESOURCE_EXHAUSTED, "Out of memory");
    return;
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
  x_free(&r->mem, svc);
  x_free(&r->mem, svcp);
  refl_answer_clear(r, &a);
  if (rv < 0 && rv != SGRPC_ERR_CALL_CLOSED && rv != SGRPC_ERR_INVALID_STATE)
    (void)sgrpc_server_call_fail(call, rv == SGRPC_ERR_MESSAGE_TOO_LARGE
                                           ? SGRPC_STATUS_RESOURCE_EXHAUSTED
                                           : SGRPC_STATUS_INTERNAL,
                                 sgrpc_strerror(rv));
}

static int RN(register)(sgrpc_reflection *r, sgrpc_router *router) {
  RT(ServerReflection_SgrpcServer) impl;
  memset(&impl, 0, sizeof(impl));
  impl.server_reflection_info = RN(on_info);
  return RF(server_reflection__sgrpc_register)(router, &impl, r);
}
