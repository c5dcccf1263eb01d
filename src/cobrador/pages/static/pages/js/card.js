// The card form of the card update page and of the invoice page's "pay now by card" (_card_form.html):
// the card goes from this browser straight to the payment provider's tokenization endpoint
// (data-tokenize-url, with the public key as appId); only the one-time token it answers is posted to this
// site (#token-form, with the "save this card" checkbox when the page has one). The card fields have no
// name attribute, so no form ever sends them.
(function () {
  var form = document.getElementById("card-form");
  if (!form) { return; }
  var tokenForm = document.getElementById("token-form");
  var error = document.getElementById("card-error");
  var button = form.querySelector("button[type=submit]");
  function field(id) { return document.getElementById(id); }
  function digits(id) { return field(id).value.replace(/\D/g, ""); }
  function fail() { error.hidden = false; button.disabled = false; }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    error.hidden = true;
    button.disabled = true;
    var body = JSON.stringify({type: "card", card: {
      holder_name: field("card-holder").value.trim(), number: digits("card-number"),
      exp_month: parseInt(digits("card-exp-month"), 10), exp_year: parseInt(digits("card-exp-year"), 10),
      cvv: digits("card-cvv")
    }});
    var url = form.getAttribute("data-tokenize-url") + "?appId=" +
      encodeURIComponent(form.getAttribute("data-public-key"));
    fetch(url, {method: "POST", headers: {"Content-Type": "application/json"}, body: body,
                credentials: "omit", referrerPolicy: "no-referrer", cache: "no-store"})
      .then(function (response) {
        return response.json().then(function (data) { return {ok: response.ok, data: data}; });
      })
      .then(function (answer) {
        if (!answer.ok || !answer.data || typeof answer.data.id !== "string") { fail(); return; }
        field("card-number").value = "";
        field("card-cvv").value = "";
        field("card-token").value = answer.data.id;
        tokenForm.submit();
      }, fail);
  });
})();
