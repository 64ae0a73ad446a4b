# Differential runner: runs PROGRAM without and with the shim preloaded (LD_PRELOAD=PRELOAD) and
# fails unless both print the same stdout and exit with the same status. Each run is bounded by
# a timeout. Usage: cmake -DPROGRAM=... -DPRELOAD=... -P run.cmake
foreach(var PROGRAM PRELOAD)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "run.cmake: ${var} is not set")
  endif()
endforeach()

execute_process(COMMAND ${PROGRAM}
                OUTPUT_VARIABLE plain_out ERROR_VARIABLE plain_err RESULT_VARIABLE plain_rc
                TIMEOUT 60)
execute_process(COMMAND ${CMAKE_COMMAND} -E env "LD_PRELOAD=${PRELOAD}" ${EXTRA_ENV} ${PROGRAM}
                OUTPUT_VARIABLE shim_out ERROR_VARIABLE shim_err RESULT_VARIABLE shim_rc
                TIMEOUT 60)

if(plain_out STREQUAL "")
  message(FATAL_ERROR "${PROGRAM} printed nothing (exit ${plain_rc}): ${plain_err}")
endif()
if(NOT plain_out STREQUAL shim_out OR NOT plain_rc STREQUAL shim_rc)
  string(REPLACE "\n" "\n  | " p "${plain_out}")
  string(REPLACE "\n" "\n  | " s "${shim_out}")
  message(FATAL_ERROR "outputs differ\n-- without the shim (exit ${plain_rc}):\n  | ${p}\n"
                      "-- with the shim (exit ${shim_rc}):\n  | ${s}\n-- shim stderr:\n${shim_err}")
endif()
message(STATUS "identical output (exit ${plain_rc}), ${PROGRAM}")
