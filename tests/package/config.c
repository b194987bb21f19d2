/* libsgrpc-config: a service config parsed from JSON, then freed. */
#include <stdio.h>
#include <string.h>
#include <sgrpc/service_config_json.h>
#include "consumer.h"

int consumer_config(void) {
  static const char json[] = "{\"methodConfig\": [{\"name\": [{\"service\": \"consumer.Echo\"}],"
                             " \"timeout\": \"1.5s\"}]}";
  sgrpc_service_config *cfg = NULL;
  char err[128];
  int ok = sgrpc_service_config_parse(json, strlen(json), NULL, &cfg, err, sizeof(err)) == 0 &&
           cfg->methods_count == 1 && cfg->methods[0].timeout == 1500000000;
  sgrpc_service_config_free(cfg);
  printf("config: %s\n", ok ? "timeout 1.5s parsed" : "FAILED");
  return ok ? 0 : 1;
}
