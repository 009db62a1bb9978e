/*-------------------------------------------------------------------------
 *
 * http_api.h
 *	  The HTTP intake's requests (http_api.c): the callbacks the listener
 *	  (http.c) gives libmicrohttpd.
 *
 *-------------------------------------------------------------------------
 */
#ifndef EK_HTTP_API_H
#define EK_HTTP_API_H

#include <sys/types.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <microhttpd.h>

extern void ek_http_api_init(void);
extern enum MHD_Result ek_http_handle_request(void *cls,
											  struct MHD_Connection *connection,
											  const char *url,
											  const char *method,
											  const char *version,
											  const char *upload_data,
											  size_t *upload_data_size,
											  void **req_cls);
extern void ek_http_request_completed(void *cls,
									  struct MHD_Connection *connection,
									  void **req_cls,
									  enum MHD_RequestTerminationCode toe);

#endif							/* EK_HTTP_API_H */
