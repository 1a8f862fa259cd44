-- wrk script for the data-plane bench's conn/s phase: one request per TCP connection.
-- `Connection: close` makes the server close after each answer and wrk reconnect, so every request
-- is a new connection (the bench checks this against the kernel's TCP open counters).
--   through the proxy:  wrk ... http://RELAY:PORT/ -- http://echo.test/ip echo.test "Basic ..."
--                       (absolute-form target + Proxy-Authorization)
--   direct:             wrk ... http://echo.test/ -- /ip echo.test
local req

function init(args)
  local target, host, auth = args[1], args[2], args[3]
  local head = "GET " .. target .. " HTTP/1.1\r\nHost: " .. host .. "\r\n"
  if auth ~= nil and auth ~= "" then
    head = head .. "Proxy-Authorization: " .. auth .. "\r\n"
  end
  req = head .. "Connection: close\r\n\r\n"
end

function request()
  return req
end
