/* Events out of the service. Placeholder until the MQTT publisher lands:
 * nothing is published. */
#include "server/app.h"

int gg__app_events_start(gg_app *app, const gg_server_config *cfg) {
  (void)app;
  (void)cfg;
  return 0;
}

void gg__app_events_stop(gg_app *app) {
  (void)app;
}

void gg__app_event(gg_app *app, const gg_app_event *ev) {
  (void)app;
  (void)ev;
}
