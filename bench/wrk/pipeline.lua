-- wrk script: sends 16 pipelined GET requests per write (TechEmpower's plaintext depth).
-- Usage: wrk -s bench/wrk/pipeline.lua URL
init = function(args)
   local r = {}
   local depth = tonumber(args[1]) or 16
   for i = 1, depth do
      r[i] = wrk.format(nil)
   end
   req = table.concat(r)
end

request = function()
   return req
end
