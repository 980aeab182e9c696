; origin example.com.
; example.com: the zone served by the shipped configuration.
$ORIGIN example.com.
$TTL 3600
@       IN SOA  ns1.example.com. hostmaster.example.com. (
                2026112701 ; serial
                7200       ; refresh
                3600       ; retry
                1209600    ; expire
                300 )      ; minimum: negative answers are cached 300 s
        IN NS   ns1
        IN NS   ns2.example.net.
        IN MX   10 mail
        IN TXT  "v=spf1 mx -all"
        IN CAA  0 issue "letsencrypt.org"
ns1     IN A    192.0.2.53
        IN AAAA 2001:db8::53
mail    IN A    192.0.2.25
www     300 IN A 192.0.2.10
        300 IN A 192.0.2.11
        300 IN AAAA 2001:db8::10
web     IN CNAME www              ; chased within the zone
cdn     IN CNAME edge.example.net. ; out-of-zone target, returned as is
_sip._tcp IN SRV 10 60 5060 sip
sip     IN A    192.0.2.60
svc     IN HTTPS 1 . alpn="h2,h3"
*.apps  IN A    192.0.2.80        ; wildcard (RFC 4592)
a.b.c   IN TXT  "b.c and c are empty non-terminals"
; delegation with glue: answered as a referral
sub     IN NS   ns.sub
ns.sub  IN A    192.0.2.153
